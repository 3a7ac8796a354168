rule smallcnnzoo:
    """A Small CNN Zoo archive, downloaded (resumable, sha256) and converted to the zoo format."""
    output:
        ZOO_FILES,
    log:
        ZOO_LOG,
    wildcard_constraints:
        zoo=one_of(zoos_from("smallcnnzoo")),
    # the zoos come first: every long job (the encoders) waits for one
    priority: 20
    threads: 1
    resources:
        mem_mb=8000,
        runtime=180,
    params:
        options=options("zoos"),
        cache=DOWNLOADS,
        out=output_dir,
    shell:
        "symzoo --threads {threads} smallcnnzoo --options {params.options:q} --out {params.out} --cache {params.cache}"
        " > {log} 2>&1"


rule zoo_shard:
    """One shard of a generated zoo: `batch_models` networks trained together (vmapped), all checkpoints."""
    input:
        data=zoo_dataset,
    output:
        SHARD_FILES,
    log:
        "results/logs/zoo/{zoo}/shard-{shard}.log",
    # the zoos come first: every long job (the encoders) waits for one
    priority: 20
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=shard_mem_mb,
        runtime=shard_runtime,
    params:
        options=shard_options,
        out=output_dir,
        device=config["device"],
    shell:
        "symzoo --threads {threads} zoo-shard --options {params.options:q} --data {input.data} --out {params.out}"
        " --device {params.device} > {log} 2>&1"


rule zoo_merge:
    """A generated zoo: its shards merged, one checkpoint selected, filtered and split (as a downloaded zoo)."""
    input:
        shard_outputs,
    output:
        ZOO_FILES,
    log:
        ZOO_LOG,
    wildcard_constraints:
        zoo=one_of(zoos_from("generate")),
    # the zoos come first: every long job (the encoders) waits for one
    priority: 20
    threads: 1
    resources:
        **CPU_JOB,
    params:
        options=options("zoos"),
        shards=shard_dirs,
        out=output_dir,
    shell:
        "symzoo --threads {threads} zoo-merge --options {params.options:q} --out {params.out} {params.shards} > {log} 2>&1"


rule inr_zoo:
    """An INR zoo: one SIREN per image of the image set, all fitted together (vmapped), in the zoo format."""
    input:
        data=zoo_dataset,
    output:
        ZOO_FILES,
    log:
        ZOO_LOG,
    wildcard_constraints:
        zoo=one_of(zoos_from("inr")),
    # the zoos come first: every long job (the encoders) waits for one
    priority: 20
    threads: 1
    resources:
        **GPU_JOB,
    params:
        options=options("zoos"),
        out=output_dir,
        device=config["device"],
    shell:
        "symzoo --threads {threads} inr-zoo --options {params.options:q} --data {input.data} --out {params.out}"
        " --device {params.device} > {log} 2>&1"
