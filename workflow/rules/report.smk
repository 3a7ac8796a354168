rule tables:
    """Barrier tables (per pair, aggregated with 95% CI, markdown, DVC metrics) of every zoo and method."""
    input:
        curves=expand(
            "results/merge/{zoo}/{method}/curves.parquet", zoo=ZOOS, method=METHODS
        ),
        orbit=expand("results/merge/{zoo}/orbit.parquet", zoo=ZOOS),
        histories=expand(
            "results/encoders/{zoo}/{encoder}/history.parquet",
            zoo=ZOOS,
            encoder=ENCODERS,
        ),
        fidelity=expand(
            "results/fidelity/{zoo}/{name}.parquet", zoo=ZOOS, name=FIDELITY
        ),
    output:
        [
            (
                report(path, caption=f"../report/{REPORTED[path]}", category="Tables")
                if path in REPORTED
                else path
            )
            for path in expand("results/tables/{table}", table=TABLES)
        ],
        metrics=expand("results/tables/metrics/{zoo}.json", zoo=ZOOS),
    log:
        "results/logs/report/tables.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        curves=named(
            ("{zoo}/{method}", "results/merge/{zoo}/{method}/curves.parquet"),
            zoo=ZOOS,
            method=METHODS,
        ),
        orbit=named(("{zoo}", "results/merge/{zoo}/orbit.parquet"), zoo=ZOOS),
        histories=named(
            ("{zoo}/{encoder}", "results/encoders/{zoo}/{encoder}/history.parquet"),
            zoo=ZOOS,
            encoder=ENCODERS,
        ),
        fidelity=named(
            ("{zoo}/{name}", "results/fidelity/{zoo}/{name}.parquet"),
            zoo=ZOOS,
            name=FIDELITY,
        ),
        out=output_dir,
    shell:
        "symzoo --threads {threads} tables --curves {params.curves} --orbit {params.orbit} --history {params.histories}"
        " --fidelity {params.fidelity} --out-dir {params.out} > {log} 2>&1"


rule figures:
    """The paper's figures (PNG and PDF), drawn from the tables alone."""
    input:
        tables=expand("results/tables/{table}", table=TABLES),
    output:
        [
            (
                report(
                    path,
                    caption=f"../report/{Path(path).stem}.rst",
                    category="Figures",
                )
                if path.endswith(".png")
                else path
            )
            for path in FIGURES
        ],
    log:
        "results/logs/report/figures.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        tables=input_dir("tables"),
        out=output_dir,
    shell:
        "symzoo --threads {threads} figures --tables {params.tables} --out-dir {params.out} > {log} 2>&1"


rule budget_report:
    """The fidelity-vs-budget curves (`snakemake budget`): table and figure."""
    input:
        points=BUDGET_TARGETS,
        controls=expand("results/fidelity/{zoo}/controls.parquet", zoo=CLASSIFIER_ZOOS),
    output:
        table="results/tables/budget.parquet",
        figures=multiext("results/figures/budget.", "png", "pdf"),
    log:
        "results/logs/report/budget.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        points=named(
            ("{zoo}/{encoder}/{point}", "results/budget/{zoo}/{encoder}/{point}"),
            zoo=CLASSIFIER_ZOOS,
            encoder=BUDGET_ENCODERS,
            point=BUDGET,
        ),
        controls=named(
            ("{zoo}", "results/fidelity/{zoo}/controls.parquet"), zoo=CLASSIFIER_ZOOS
        ),
    shell:
        "symzoo --threads {threads} budget-report --point {params.points} --controls {params.controls}"
        " --table {output.table} --out-dir results/figures > {log} 2>&1"
