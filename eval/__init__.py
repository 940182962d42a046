"""Few-shot evaluation of a Flamingo checkpoint on the paper's benchmarks (README "Evaluation").

    __main__.py   python -m eval: the CLI (torchrun: queries split across ranks, gathered)
    tasks.py      the benchmarks: files, splits, kind; loading queries and the demo pool (dedup.evalsets)
    prompts.py    the paper's / OpenFlamingo's prompt text per kind; zero-shot text-only form
    demos.py      demonstrations: random (seeded per query) or RICES (cached vision features)
    media.py      images / videos (1 FPS) preprocessed as in training
    scoring.py    generation batches; candidate ranking on copies of the prompt's KV cache
    runner.py     one task x shots x trials: prompts, model calls, gathered outputs, metrics
    metrics.py    CIDEr-D / BLEU-4 (pycocoevalcap), VQA accuracy + normalisation, ROC-AUC, top-k, NDCG, mWAP
    report.py     results.json, results.md
    checkpoints.py  the model rebuilt from a run directory or checkpoint file
    sample.py     the bundled evaluation sample for `make eval`
"""
