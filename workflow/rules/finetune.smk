rule finetune_method:
    """A single-shot fine-tuning method on a zoo's test networks: a control, or an operator trained on its train
    networks and applied in one forward pass."""
    input:
        zoo=ZOO_FILES,
        data=zoo_dataset,
    output:
        FINETUNE_FILES,
    log:
        "results/logs/finetune/{zoo}/{finetune}.log",
    priority: 5
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=finetune_runtime,
    params:
        options=finetune_options,
        zoo=input_dir("zoo"),
        method=finetune_method_name,
        out=finetune_out,
        device=config["device"],
    shell:
        "symzoo --threads {threads} finetune --options {params.options:q} --zoo {params.zoo} --data {input.data}"
        " --method {params.method} --out {params.out} --device {params.device} --no-progress > {log} 2>&1"


use rule finetune_method as finetune_sgd with:
    """The SGD baseline: every test network fine-tuned with SGD (a vmapped population), one folder per budget."""
    output:
        [
            f
            for epochs in sorted(config["finetune"]["sgd"]["epochs"])
            for f in expand(
                FINETUNE_FILES,
                finetune=f"sgd_{{objective}}-{epochs}",
                allow_missing=True,
            )
        ],
    log:
        "results/logs/finetune/{zoo}/sgd_{objective}.log",
    resources:
        **GPU_JOB,


rule finetune_report:
    """The fine-tuning table (the paper's Table 1 with controls and fidelity), its targets and figure."""
    input:
        expand(FINETUNE_SUMMARY, zoo=FINETUNE_ZOOS, folder=FINETUNE_FOLDERS),
    output:
        with_captions(FINETUNE_REPORT),
    log:
        "results/logs/report/finetune.log",
    threads: 1
    resources:
        **REPORT_JOB,
    params:
        results=named(
            "{zoo}/{folder}",
            os.path.dirname(FINETUNE_SUMMARY),
            zoo=FINETUNE_ZOOS,
            folder=FINETUNE_FOLDERS,
        ),
        tables=output_dir,
        figures=lambda w, output: os.path.dirname(output[-1]),
    shell:
        "symzoo --threads {threads} finetune-report --results {params.results} --tables {params.tables}"
        " --figures {params.figures} > {log} 2>&1"
