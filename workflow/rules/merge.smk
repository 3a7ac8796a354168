rule pairs:
    """Disjoint pairs of the best test-split networks, shared by every merging method."""
    input:
        zoo=ZOO_FILES,
    output:
        PAIRS,
    log:
        "results/logs/merge/{zoo}/pairs.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        options=options("merge"),
        zoo=input_dir("zoo"),
    shell:
        "symzoo --threads {threads} pairs --options {params.options:q} --zoo {params.zoo} --out {output} > {log} 2>&1"


rule originals:
    """The loss and score of every pair's two original networks, once for every method's curves."""
    input:
        zoo=ZOO_FILES,
        pairs=PAIRS,
        data=zoo_dataset,
    output:
        ORIGINALS,
    log:
        "results/logs/merge/{zoo}/originals.log",
    threads: 1
    resources:
        **CPU_JOB,
    params:
        zoo=input_dir("zoo"),
        device=config["device"],
    shell:
        "symzoo --threads {threads} originals --zoo {params.zoo} --pairs {input.pairs} --data {input.data}"
        " --out {output} --device {params.device} > {log} 2>&1"


rule medoid:
    """The train split's medoid (the medoid control), once for the medoid method, the orbit and the controls."""
    input:
        zoo=ZOO_FILES,
        data=zoo_dataset,
    output:
        MEDOID_RECORD,
    log:
        "results/logs/merge/{zoo}/medoid.log",
    threads: 1
    resources:
        **CPU_JOB,
    params:
        zoo=input_dir("zoo"),
        fidelity=options("fidelity"),
        device=config["device"],
    shell:
        "symzoo --threads {threads} medoid --zoo {params.zoo} --data {input.data} --fidelity-options {params.fidelity:q}"
        " --out {output} --device {params.device} > {log} 2>&1"


rule endpoints:
    """The networks to interpolate between for one method: aligned, canonical, the medoid control or reconstructed."""
    input:
        zoo=ZOO_FILES,
        pairs=PAIRS,
        model=autoencoder_model,
        medoid=medoid_record,
    output:
        ENDPOINTS,
    log:
        "results/logs/merge/{zoo}/{method}/endpoints.log",
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        zoo=input_dir("zoo"),
        model=model_option(lambda w: w.method),
        medoid=lambda w, input: f"--medoid {input.medoid}" if input.medoid else "",
        seed=config["merge"]["seed"],
        device=config["device"],
    shell:
        "symzoo --threads {threads} endpoints --method {wildcards.method} --zoo {params.zoo} --pairs {input.pairs}"
        " {params.model} {params.medoid} --seed {params.seed} --out {output} --device {params.device} > {log} 2>&1"


rule interpolate:
    """Test loss, score and distance from the original networks along the segment of every pair, batched."""
    input:
        zoo=ZOO_FILES,
        pairs=PAIRS,
        originals=ORIGINALS,
        endpoints=ENDPOINTS,
        data=zoo_dataset,
    output:
        CURVES,
    log:
        "results/logs/merge/{zoo}/{method}/interpolate.log",
    threads: 1
    resources:
        **GPU_JOB,
    params:
        zoo=input_dir("zoo"),
        alphas=config["merge"]["alphas"],
        device=config["device"],
    shell:
        "symzoo --threads {threads} interpolate --zoo {params.zoo} --pairs {input.pairs} --originals {input.originals}"
        " --endpoints {input.endpoints}"
        " --data {input.data} --alphas {params.alphas} --out {output} --device {params.device} > {log} 2>&1"


rule orbit:
    """Each network against a random symmetry transform of itself, for every method."""
    input:
        zoo=ZOO_FILES,
        data=zoo_dataset,
        models=expand(ENCODER_MODEL, encoder=ENCODERS, allow_missing=True),
        medoid=MEDOID_RECORD,
    output:
        ORBIT,
    log:
        "results/logs/merge/{zoo}/orbit.log",
    threads: 1
    resources:
        **GPU_JOB,
    params:
        options=orbit_options,
        zoo=input_dir("zoo"),
        models=lambda w, input: [
            f"--model {autoencoder_method(e)}={m}"
            for e, m in zip(ENCODERS, input.models)
        ],
        device=config["device"],
    shell:
        "symzoo --threads {threads} orbit --options {params.options:q} --zoo {params.zoo} --data {input.data} {params.models}"
        " --medoid {input.medoid} --out {output} --device {params.device} > {log} 2>&1"


rule merge_many:
    """Groups of K test networks merged into one by every method and by Re-Basin's MergeMany (classifier zoos)."""
    input:
        zoo=ZOO_FILES,
        data=zoo_dataset,
        models=expand(ENCODER_MODEL, encoder=ENCODERS, allow_missing=True),
        medoid=MEDOID_RECORD,
    output:
        MERGE_MANY,
    log:
        "results/logs/merge/{zoo}/merge_many.log",
    threads: 1
    resources:
        **CPU_JOB,
    params:
        options=options("merge"),
        zoo=input_dir("zoo"),
        models=lambda w, input: [
            f"--model {autoencoder_method(e)}={m}"
            for e, m in zip(ENCODERS, input.models)
        ],
        device=config["device"],
    shell:
        "symzoo --threads {threads} merge-many --options {params.options:q} --zoo {params.zoo} --data {input.data}"
        " {params.models} --medoid {input.medoid} --out {output} --device {params.device} > {log} 2>&1"


rule fidelity:
    """Fidelity of one autoencoder's reconstructions on the train and test networks (test images)."""
    input:
        zoo=ZOO_FILES,
        data=zoo_dataset,
        model=ENCODER_MODEL,
    output:
        filled(FIDELITY_TABLE, name="{encoder}"),
    log:
        "results/logs/fidelity/{zoo}/{encoder}.log",
    threads: 1
    resources:
        **CPU_JOB,
    params:
        zoo=input_dir("zoo"),
        fidelity=options("fidelity"),
        model=model_option(lambda w: autoencoder_method(w.encoder)),
        device=config["device"],
    shell:
        "symzoo --threads {threads} fidelity --zoo {params.zoo} --data {input.data} {params.model}"
        " --fidelity-options {params.fidelity:q} --out {output} --device {params.device} > {log} 2>&1"


use rule fidelity as budget_fidelity with:
    """The fidelity of one budget point's autoencoder (test and train networks)."""
    input:
        zoo=ZOO_FILES,
        data=zoo_dataset,
        model=BUDGET_MODEL,
    output:
        BUDGET_FIDELITY,
    log:
        "results/logs/budget/{zoo}/{encoder}/{point}-fidelity.log",


rule fidelity_controls:
    """The same measures for controls fitted on the train split: identity, medoid, mean prediction, nearest train."""
    input:
        zoo=ZOO_FILES,
        data=zoo_dataset,
        medoid=MEDOID_RECORD,
    output:
        filled(FIDELITY_TABLE, name=CONTROLS),
    log:
        "results/logs/fidelity/{zoo}/controls.log",
    threads: 1
    resources:
        **CPU_JOB,
    params:
        zoo=input_dir("zoo"),
        fidelity=options("fidelity"),
        device=config["device"],
    shell:
        "symzoo --threads {threads} fidelity --zoo {params.zoo} --data {input.data} --medoid {input.medoid}"
        " --fidelity-options {params.fidelity:q} --out {output} --device {params.device} > {log} 2>&1"
