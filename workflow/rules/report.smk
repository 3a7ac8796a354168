rule tables:
    """Barrier tables (per pair, aggregated with 95% CI, markdown, DVC metrics) of every zoo and method."""
    input:
        curves=ALL_CURVES,
        orbit=ALL_ORBITS,
        histories=expand(ENCODER_HISTORY, zoo=ZOOS, encoder=ENCODERS),
        fidelity=ALL_FIDELITY,
        many=ALL_MERGE_MANY,
    output:
        with_captions(ALL_TABLES),
        metrics=ALL_METRICS,
    log:
        "results/logs/report/tables.log",
    threads: 1
    resources:
        **REPORT_JOB,
    params:
        curves=named("{zoo}/{method}", CURVES, zoo=ZOOS, method=METHODS),
        orbit=named("{zoo}", ORBIT, zoo=ZOOS),
        histories=named("{zoo}/{encoder}", ENCODER_HISTORY, zoo=ZOOS, encoder=ENCODERS),
        fidelity=named("{zoo}/{name}", FIDELITY_TABLE, zoo=ZOOS, name=FIDELITY),
        many=named("{zoo}", MERGE_MANY, zoo=CLASSIFIER_ZOOS),
        out=output_dir,
    shell:
        "symzoo --threads {threads} tables --curves {params.curves} --orbit {params.orbit} --history {params.histories}"
        " --fidelity {params.fidelity} --many {params.many} --out-dir {params.out} > {log} 2>&1"


rule figures:
    """The paper's figures (PNG and PDF), drawn from the tables alone."""
    input:
        tables=ALL_TABLES,
    output:
        with_captions(FIGURES),
    log:
        "results/logs/report/figures.log",
    threads: 1
    resources:
        **REPORT_JOB,
    params:
        tables=input_dir("tables"),
        out=output_dir,
    shell:
        "symzoo --threads {threads} figures --tables {params.tables} --out-dir {params.out} > {log} 2>&1"


rule budget_report:
    """The fidelity-vs-budget curves (`snakemake budget`): table and figure."""
    input:
        points=BUDGET_TARGETS,
        controls=expand(FIDELITY_TABLE, zoo=CLASSIFIER_ZOOS, name=CONTROLS),
    output:
        table=TABLE.format(table=BUDGET_TABLE),
        figures=expand(FIGURE, name="budget", ext=FORMATS),
    log:
        "results/logs/report/budget.log",
    threads: 1
    resources:
        **REPORT_JOB,
    params:
        points=named(
            "{zoo}/{encoder}/{point}",
            BUDGET_DIR,
            zoo=CLASSIFIER_ZOOS,
            encoder=BUDGET_ENCODERS,
            point=BUDGET,
        ),
        controls=named("{zoo}", FIDELITY_TABLE, zoo=CLASSIFIER_ZOOS, name=CONTROLS),
        figures=lambda w, output: os.path.dirname(output.figures[0]),
    shell:
        "symzoo --threads {threads} budget-report --point {params.points} --controls {params.controls}"
        " --table {output.table} --out-dir {params.figures} > {log} 2>&1"
