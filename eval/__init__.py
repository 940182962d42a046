"""Few-shot evaluation of a Flamingo checkpoint on the paper's benchmarks (see eval/README in the docstrings).

    metrics.py   CIDEr-D / BLEU-4 (pycocoevalcap), VQA accuracy + normalisation, ROC-AUC, top-k, NDCG
"""
