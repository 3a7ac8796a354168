rule dataset:
    """An image set (8x8 digits, the 5,000 bundled MNIST digits, CIFAR-10-GS) as results/data/{dataset}.npz."""
    output:
        DATASET,
    log:
        "results/logs/data/{dataset}.log",
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        options=options("datasets"),
        cache=DOWNLOADS,
    shell:
        "symzoo --threads {threads} data --options {params.options:q} --out {output} --cache {params.cache} > {log} 2>&1"
