rule encoder:
    """An autoencoder (graph metanetwork encoder + decoder) trained on a zoo with the functional KL loss."""
    input:
        zoo=ZOO_FILES,
        data=zoo_dataset,
    output:
        ENCODER_FILES,
    log:
        "results/logs/encoders/{zoo}/{encoder}.log",
    # the run's longest jobs start as soon as their zoo is there; shorter ones (predictors) fill the other cores
    priority: 10
    threads: 1
    resources:
        **ENCODER_JOB,
    params:
        options=encoder_options,
        zoo=input_dir("zoo"),
        out=output_dir,
        device=config["device"],
    shell:
        "symzoo --threads {threads} encoder --options {params.options:q} --zoo {params.zoo} --data {input.data}"
        " --out {params.out} --device {params.device} > {log} 2>&1"


use rule encoder as budget_encoder with:
    """One point of a fidelity-vs-budget curve: an encoder retrained with one setting changed."""
    output:
        BUDGET_FILES,
    log:
        "results/logs/budget/{zoo}/{encoder}/{point}.log",
    params:
        options=budget_options,
        zoo=input_dir("zoo"),
        out=output_dir,
        device=config["device"],
