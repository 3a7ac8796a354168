rule smallcnnzoo:
    """A Small CNN Zoo archive, downloaded (resumable, sha256) and converted to the zoo format."""
    output:
        zoo_files("{zoo}"),
    log:
        "results/logs/zoo/{zoo}.log",
    params:
        options=options("zoos"),
        cache=DOWNLOADS,
        out="results/zoo/{zoo}",
    shell:
        "symzoo smallcnnzoo --options {params.options:q} --out {params.out} --cache {params.cache}"
        " > {log} 2>&1"
