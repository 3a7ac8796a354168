rule predictor:
    """One generalization predictor (test accuracy from weights) on one zoo, for one seed."""
    input:
        zoo=zoo_files("{zoo}"),
        model=probe_model,
    output:
        multiext(
            "results/predict/{zoo}/{predictor}/seed-{seed}/",
            "predictions.parquet",
            "history.parquet",
            "summary.json",
        ),
    log:
        "results/logs/predict/{zoo}/{predictor}/seed-{seed}.log",
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=predict_runtime,
    params:
        options=lambda w: json.dumps(
            config["predict"]["models"][w.predictor], sort_keys=True
        ),
        zoo=input_dir("zoo"),
        out=output_dir,
        model=lambda w, input: f"--model {input.model}" if input.model else "",
        device=config["device"],
    shell:
        "symzoo --threads {threads} predict --options {params.options:q} --zoo {params.zoo} --seed {wildcards.seed}"
        " {params.model} --out {params.out} --device {params.device} --no-progress > {log} 2>&1"


rule generalization:
    """The generalization table (per zoo, model and seed; mean ± std over seeds), its markdown and figure."""
    input:
        PREDICT_TARGETS,
    output:
        report(
            "results/tables/generalization.md",
            caption="../report/generalization.rst",
            category="Tables",
        ),
        "results/tables/generalization.parquet",
        "results/tables/generalization_summary.parquet",
        report(
            "results/figures/generalization.png",
            caption="../report/generalization_figure.rst",
            category="Figures",
        ),
        "results/figures/generalization.pdf",
    log:
        "results/logs/report/generalization.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        predictions=named(
            ("{zoo}/{predictor}/{seed}", PREDICTIONS),
            zoo=CLASSIFIER_ZOOS,
            predictor=PREDICTORS,
            seed=SEEDS,
        ),
    shell:
        "symzoo --threads {threads} generalization --predictions {params.predictions} --tables results/tables"
        " --figures results/figures > {log} 2>&1"
