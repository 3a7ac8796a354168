rule encoder:
    """An autoencoder (graph metanetwork encoder + decoder) trained on a zoo with the functional KL loss."""
    input:
        zoo=zoo_files("{zoo}"),
        data=zoo_dataset,
    output:
        encoder_files("{zoo}", "{encoder}"),
    log:
        "results/logs/encoders/{zoo}/{encoder}.log",
    params:
        options=options("encoders"),
        zoo=input_dir("zoo"),
        out=output_dir,
        device=config["device"],
    shell:
        "symzoo --threads {threads} encoder --options {params.options:q} --zoo {params.zoo} --data {input.data}"
        " --out {params.out} --device {params.device} > {log} 2>&1"
