"""gunicorn settings of bench/pipeline's API pool: the CPU probes of bench/pipeline/cpu.py in
every worker, after the application is loaded (nothing else differs from the command line)."""


def post_worker_init(worker) -> None:
    from bench.pipeline.cpu import install

    install("api")
