"""Few-shot evaluation of a Flamingo checkpoint on the paper's benchmarks.

    tasks.py     the benchmarks: files, splits, kind; loading queries and the demo pool (dedup.evalsets)
    prompts.py   the paper's / OpenFlamingo's prompt text per kind; zero-shot text-only form
    demos.py     demonstrations: random (seeded per query) or RICES (cached vision features)
    media.py     images / videos (1 FPS) preprocessed as in training
    metrics.py   CIDEr-D / BLEU-4 (pycocoevalcap), VQA accuracy + normalisation, ROC-AUC, top-k, NDCG
"""
