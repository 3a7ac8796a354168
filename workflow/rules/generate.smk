rule represent:
    """A zoo's networks in one representation (raw, aligned or normalized to the train medoid), for the flows."""
    input:
        zoo=ZOO_FILES,
        medoid=MEDOID_RECORD,
    output:
        REPRESENT_FILES,
    log:
        "results/logs/generate/{zoo}/represent-{representation}.log",
    threads: 1
    resources:
        **CPU_JOB,
    params:
        zoo=input_dir("zoo"),
        out=output_dir,
    shell:
        "symzoo --threads {threads} represent --zoo {params.zoo} --representation {wildcards.representation}"
        " --medoid {input.medoid} --out {params.out} > {log} 2>&1"


rule generate_model:
    """A generative model of a zoo's weights (a flow, trained and sampled) or a control, judged on the test images."""
    input:
        zoo=ZOO_FILES,
        data=zoo_dataset,
        represented=generate_represented,
        summaries=generate_summaries,
    output:
        GENERATE_FILES,
    log:
        "results/logs/generate/{zoo}/{generator}.log",
    priority: 5
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=60,
    params:
        options=generate_options,
        zoo=input_dir("zoo"),
        inputs=generate_inputs,
        min_accuracy=lambda w: config["zoos"][w.zoo]["min_accuracy"],
        out=output_dir,
        device=config["device"],
    shell:
        "symzoo --threads {threads} generate --options {params.options:q} --zoo {params.zoo} --data {input.data}"
        " --model {wildcards.generator} {params.inputs} --min-accuracy {params.min_accuracy} --out {params.out}"
        " --device {params.device} --no-progress > {log} 2>&1"


rule generate_report:
    """The generation tables (quality, novelty, diversity, ensembles, likelihood, targets) and figures."""
    input:
        [
            GENERATE_SUMMARY.format(zoo=zoo, generator=folder)
            for zoo in GENERATE_ZOOS
            for folder in GENERATE_FOLDERS[zoo]
        ],
    output:
        with_captions(GENERATE_REPORT),
    log:
        "results/logs/report/generation.log",
    threads: 1
    resources:
        **REPORT_JOB,
    params:
        results=[
            f"{zoo}/{folder}={os.path.dirname(GENERATE_SUMMARY.format(zoo=zoo, generator=folder))}"
            for zoo in GENERATE_ZOOS
            for folder in GENERATE_FOLDERS[zoo]
        ],
        tables=output_dir,
        figures=lambda w, output: os.path.dirname(output[-1]),
    shell:
        "symzoo --threads {threads} generate-report --results {params.results} --tables {params.tables}"
        " --figures {params.figures} > {log} 2>&1"
