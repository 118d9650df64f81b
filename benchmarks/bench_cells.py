"""Forward+backward throughput of rnnlab's LSTM / GRU against torch.nn's (now rnnlab.bench.cells).

A shortcut to the same grid that ``rnnlab bench --parts cells`` runs inside the speed report, with
the extra flags of a focused look (``--sizes``, ``--mode``, ``--precision``, ``--profile``):

    python benchmarks/bench_cells.py --quick
    python benchmarks/bench_cells.py --sizes 512,64,100 --mode lstm --precision fp32 --profile
"""

from rnnlab.bench.cells import main

if __name__ == "__main__":
    main()
