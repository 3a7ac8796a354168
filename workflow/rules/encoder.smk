rule encoder:
    """An autoencoder (graph metanetwork encoder + decoder) trained on a zoo with the functional KL loss."""
    input:
        zoo=zoo_files("{zoo}"),
        data=zoo_dataset,
    output:
        encoder_files("{zoo}", "{encoder}"),
    log:
        "results/logs/encoders/{zoo}/{encoder}.log",
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=16000,
        runtime=encoder_runtime,
    params:
        options=lambda w: json.dumps(
            zoo_encoder(config, w.zoo, w.encoder), sort_keys=True
        ),
        zoo=input_dir("zoo"),
        out=output_dir,
        device=config["device"],
    shell:
        "symzoo --threads {threads} encoder --options {params.options:q} --zoo {params.zoo} --data {input.data}"
        " --out {params.out} --device {params.device} > {log} 2>&1"


rule budget_encoder:
    """One point of a fidelity-vs-budget curve: an encoder retrained with one setting changed."""
    input:
        zoo=zoo_files("{zoo}"),
        data=zoo_dataset,
    output:
        multiext(
            "results/budget/{zoo}/{encoder}/{point}/",
            "model.pt",
            "history.parquet",
            "summary.json",
        ),
    log:
        "results/logs/budget/{zoo}/{encoder}/{point}.log",
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=16000,
        runtime=encoder_runtime,
    params:
        options=budget_options,
        zoo=input_dir("zoo"),
        out=output_dir,
        device=config["device"],
    shell:
        "symzoo --threads {threads} encoder --options {params.options:q} --zoo {params.zoo} --data {input.data}"
        " --out {params.out} --device {params.device} --no-progress > {log} 2>&1"


rule budget_fidelity:
    """The fidelity of one budget point's autoencoder (test and train networks)."""
    input:
        zoo=zoo_files("{zoo}"),
        data=zoo_dataset,
        model="results/budget/{zoo}/{encoder}/{point}/model.pt",
    output:
        "results/budget/{zoo}/{encoder}/{point}/fidelity.parquet",
    log:
        "results/logs/budget/{zoo}/{encoder}/{point}-fidelity.log",
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        zoo=input_dir("zoo"),
        fidelity=options("fidelity"),
        name=lambda w: autoencoder_method(w.encoder),
        device=config["device"],
    shell:
        "symzoo --threads {threads} fidelity --zoo {params.zoo} --data {input.data} --model {input.model}"
        " --name {params.name} --fidelity {params.fidelity:q} --out {output} --device {params.device}"
        " > {log} 2>&1"
