rule pairs:
    """Disjoint pairs of the best test-split networks, shared by every merging method."""
    input:
        zoo=zoo_files("{zoo}"),
    output:
        "results/merge/{zoo}/pairs.parquet",
    log:
        "results/logs/merge/{zoo}/pairs.log",
    params:
        options=options("merge"),
        zoo=input_dir("zoo"),
    shell:
        "symzoo --threads {threads} pairs --options {params.options:q} --zoo {params.zoo} --out {output} > {log} 2>&1"


rule canonicalize:
    """The networks to interpolate between for one method (aligned, canonical or reconstructed)."""
    input:
        zoo=zoo_files("{zoo}"),
        pairs="results/merge/{zoo}/pairs.parquet",
        model=autoencoder_model,
    output:
        multiext(
            "results/merge/{zoo}/{method}/endpoints/",
            "params.npy",
            "models.parquet",
            "arch.json",
        ),
    log:
        "results/logs/merge/{zoo}/{method}/canonicalize.log",
    params:
        zoo=input_dir("zoo"),
        out=output_dir,
        model=lambda w, input: f"--model {input.model}" if input.model else "",
        seed=config["merge"]["seed"],
        device=config["device"],
    shell:
        "symzoo --threads {threads} canonicalize --method {wildcards.method} --zoo {params.zoo} --pairs {input.pairs}"
        " --out {params.out} {params.model} --seed {params.seed} --device {params.device} > {log} 2>&1"


rule interpolate:
    """Test loss and accuracy along the segment of every pair, all pairs x alphas in batched passes."""
    input:
        endpoints=multiext(
            "results/merge/{zoo}/{method}/endpoints/",
            "params.npy",
            "models.parquet",
            "arch.json",
        ),
        data=zoo_dataset,
    output:
        "results/merge/{zoo}/{method}/curves.parquet",
    log:
        "results/logs/merge/{zoo}/{method}/interpolate.log",
    params:
        endpoints=input_dir("endpoints"),
        alphas=config["merge"]["alphas"],
        device=config["device"],
    shell:
        "symzoo --threads {threads} interpolate --endpoints {params.endpoints} --data {input.data} --alphas {params.alphas}"
        " --out {output} --device {params.device} > {log} 2>&1"


rule orbit:
    """Each network against a random symmetry transform of itself, for every method."""
    input:
        zoo=zoo_files("{zoo}"),
        data=zoo_dataset,
        models=expand("results/encoders/{{zoo}}/{encoder}/model.pt", encoder=ENCODERS),
    output:
        "results/merge/{zoo}/orbit.parquet",
    log:
        "results/logs/merge/{zoo}/orbit.log",
    params:
        options=options("merge"),
        zoo=input_dir("zoo"),
        models=lambda w, input: [
            f"--model ae_{e}={m}" for e, m in zip(ENCODERS, input.models)
        ],
        device=config["device"],
    shell:
        "symzoo --threads {threads} orbit --options {params.options:q} --zoo {params.zoo} --data {input.data} {params.models}"
        " --out {output} --device {params.device} > {log} 2>&1"
