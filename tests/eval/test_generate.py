"""python -m model.generate: prints the continuation of an interleaved prompt (images or a video)."""
from pathlib import Path

import pytest
import torch

from eval.media import MediaLoader
from eval.scoring import generate_batch
from model import generate
from model.build import build_flamingo
from model.config import FlamingoConfig

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    model, tok = build_flamingo(FlamingoConfig.tiny())
    with torch.no_grad():   # open the gates so the pictures change the output
        for layer in model.xattn_layers.values():
            layer.gated.attn_gate.fill_(1.0)
            layer.gated.ff_gate.fill_(1.0)
        for p in model.resampler.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    path = tmp_path_factory.mktemp("gen") / "w.safetensors"
    model.save_trainable(str(path))
    return path, model.eval(), tok


def test_images_in_order_and_a_video(ckpt, capsys):
    path, model, tok = ckpt
    cat, coffee = str(DATA / "images" / "chelsea.png"), str(DATA / "images" / "coffee.png")
    prompt = "<image>Output:a cat<EOC><image>Output:"
    assert generate.main(["--checkpoint", str(path), "--image", cat, "--image", coffee, "--prompt", prompt,
                          "--max-new-tokens", "6", "--num-beams", "2"]) == 0
    printed = capsys.readouterr().out
    loader = MediaLoader.for_model(model)
    vision = torch.stack([loader.load(cat, "image")[None], loader.load(coffee, "image")[None]])
    expect = generate_batch(model, tok, [(prompt, vision)], 6, 2)[0]
    assert printed == expect + "\n"
    video = str(DATA / "videos" / "bikes.mp4")
    assert generate.main(["--checkpoint", str(path), "--video", video, "--prompt", "<image>Output:",
                          "--max-new-tokens", "4", "--num-beams", "1"]) == 0
    frames = loader.load(video, "video")
    assert frames.shape == (8, 3, model.image_size, model.image_size)   # 10 s at 1 FPS -> 8 evenly spread
    assert capsys.readouterr().out == generate_batch(model, tok, [("<image>Output:", frames[None])], 4, 1)[0] + "\n"


def test_bad_arguments_are_one_line_errors(ckpt, tmp_path):
    path = str(ckpt[0])
    cat = str(DATA / "images" / "chelsea.png")
    with pytest.raises(SystemExit, match=r"^error: --prompt has 2 <image> token\(s\) but 1 --image/--video given$"):
        generate.main(["--checkpoint", path, "--image", cat, "--prompt", "<image>a<image>b"])
    with pytest.raises(SystemExit, match="^error: --image nope.jpg: no such file$"):
        generate.main(["--checkpoint", path, "--image", "nope.jpg", "--prompt", "<image>"])
    with pytest.raises(SystemExit, match="images or videos, not both"):
        generate.main(["--checkpoint", path, "--image", cat, "--video", cat, "--prompt", "<image><image>"])
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(SystemExit, match="not a readable image"):
        generate.main(["--checkpoint", path, "--image", str(bad), "--prompt", "<image>"])
