rule dataset:
    """An image set (digits, CIFAR-10-GS) as results/data/{dataset}.npz."""
    output:
        "results/data/{dataset}.npz",
    params:
        options=options("datasets"),
        cache=DOWNLOADS,
    log:
        "results/logs/data/{dataset}.log",
    shell:
        "symzoo data --options {params.options:q} --out {output} --cache {params.cache} > {log} 2>&1"
