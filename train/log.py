"""What a run writes about itself: log.jsonl, loss.png, a progress bar, TensorBoard if installed.

One JSON object per line: {"step", "kind": "train"|"eval", ...}. On resume the
file is cut back to the checkpoint's step (lines a killed run wrote after its
last checkpoint are dropped, with any half-written last line), so the log of a
resumed run reads as if it had never stopped.
"""
from __future__ import annotations

import json
import os


def read_log(path: str) -> list[dict]:
    out = []
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by a kill; nothing valid follows it
    return out


class RunLog:
    def __init__(self, out_dir: str, resume_step: int | None, enabled: bool = True):
        self.enabled = enabled
        self.path = os.path.join(out_dir, "log.jsonl")
        self.png = os.path.join(out_dir, "loss.png")
        self.records: list[dict] = []
        self.tb = None
        if not enabled:
            return
        os.makedirs(out_dir, exist_ok=True)
        if resume_step is not None:
            self.records = [r for r in read_log(self.path) if r["step"] <= resume_step]
        with open(self.path, "w", encoding="utf-8") as f:
            for r in self.records:
                f.write(json.dumps(r) + "\n")
        self.fh = open(self.path, "a", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(os.path.join(out_dir, "tb"))
        except Exception:  # tensorboard not installed: the JSONL and PNG are the record
            self.tb = None

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self.records.append(record)
        self.fh.write(json.dumps(record) + "\n")
        self.fh.flush()
        if self.tb is not None:
            for key in ("loss", "eval_loss", "gates"):
                for name, v in (record.get(key) or {}).items():
                    self.tb.add_scalar(f"{key}/{name}", v, record["step"])
            for key in ("lr", "samples_per_s", "tokens_per_s"):
                if key in record:
                    self.tb.add_scalar(key, record[key], record["step"])

    def plot(self) -> None:
        if not self.enabled:
            return
        import matplotlib.pyplot as plt

        fig = self.figure()
        tmp = self.png + ".tmp.png"
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        os.replace(tmp, self.png)

    def figure(self):
        """loss.png's figure: per dataset, the training loss and the held-out loss."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4.5))
        train = [r for r in self.records if r["kind"] == "train"]
        evals = [r for r in self.records if r["kind"] == "eval"]
        names = sorted({n for r in train for n in r["loss"]} | {n for r in evals for n in r["eval_loss"]})
        colours = {n: f"C{i % 10}" for i, n in enumerate(names)}
        # One colour per dataset: its training loss as a line, its held-out loss as dots.
        for name in names:
            pts = [(r["step"], r["loss"][name]) for r in train if name in r["loss"]]
            if pts:
                ax.plot(*zip(*pts), color=colours[name], label=f"{name}: train")
            pts = [(r["step"], r["eval_loss"][name]) for r in evals if name in r["eval_loss"]]
            if pts:
                ax.plot(*zip(*pts), "o--", color=colours[name], label=f"{name}: held-out")
        ax.set_title("loss by dataset")
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("loss (nats/token)")
        ax.grid(alpha=0.3)
        if names:
            ax.legend(fontsize=8)
        fig.tight_layout()
        return fig

    def close(self) -> None:
        if self.enabled:
            self.fh.close()
            if self.tb is not None:
                self.tb.close()
