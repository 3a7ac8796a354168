rule predictor:
    """One generalization predictor (test accuracy from weights) on one zoo, for one seed."""
    input:
        zoo=ZOO_FILES,
        model=probe_model,
    output:
        PREDICT_FILES,
    log:
        "results/logs/predict/{zoo}/{predictor}/seed-{seed}.log",
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=8000,
        runtime=predict_runtime,
    params:
        options=predictor_options,
        zoo=input_dir("zoo"),
        out=output_dir,
        model=model_option(
            lambda w: autoencoder_method(
                config["predict"]["models"][w.predictor]["encoder"] or ""
            )
        ),
        device=config["device"],
    shell:
        "symzoo --threads {threads} predict --options {params.options:q} --zoo {params.zoo} --seed {wildcards.seed}"
        " {params.model} --out {params.out} --device {params.device} --no-progress > {log} 2>&1"


rule generalization:
    """The generalization table (per zoo, model and seed; mean ± std over seeds), its markdown and figure."""
    input:
        PREDICT_TARGETS,
    output:
        with_captions(GENERALIZATION),
    log:
        "results/logs/report/generalization.log",
    threads: 1
    resources:
        **REPORT_JOB,
    params:
        predictions=named(
            "{zoo}/{predictor}/{seed}",
            PREDICTIONS,
            zoo=CLASSIFIER_ZOOS,
            predictor=PREDICTORS,
            seed=SEEDS,
        ),
        tables=output_dir,
        figures=lambda w, output: os.path.dirname(output[-1]),
    shell:
        "symzoo --threads {threads} generalization --predictions {params.predictions} --tables {params.tables}"
        " --figures {params.figures} > {log} 2>&1"
