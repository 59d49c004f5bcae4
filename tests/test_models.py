"""models/: registry, weights loading, DomainNet's loss terms, fusions and readouts."""

from __future__ import annotations

from importlib import metadata

import pytest
import torch
import torch.nn.functional as F
from bodyscene.models.backbones import create_backbone, load_weights
from bodyscene.models.domainnet import StreamLogits
from bodyscene.models.registry import ENTRY_POINT_GROUP, create_model, list_models
from torch import nn

from bodyscene.errors import ModelError


class UserNet(nn.Module):
    """A model a user might plug in: one view, logits out."""

    views = ("body",)

    def __init__(self, num_classes: int, width: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, body):
        return self.fc(self.conv(body).mean((2, 3)))


def user_net(num_classes: int, width: int = 4) -> UserNet:
    return UserNet(num_classes, width)


def not_a_module(num_classes: int):
    return "nope"


def _x(n=2, size=32):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def test_builtin_models_declare_views_and_give_logits():
    assert {"baseline", "domainnet"} <= set(list_models())
    base = create_model("baseline", 3, backbone="tiny")
    assert base.views == ("original",) and base(_x()).shape == (2, 3)
    dn = create_model("domainnet", 3, backbone="tiny")
    assert dn.views == ("body", "background")
    out = dn(_x(), _x())
    assert isinstance(out, StreamLogits) and out.fused.shape == (2, 3)


def test_module_factory_string_and_default_views():
    model = create_model(f"{__name__}:user_net", 5, width=2)
    assert isinstance(model, UserNet) and model.views == ("body",)
    assert model(_x()).shape == (2, 5)
    with pytest.raises(ModelError, match="has no"):
        create_model(f"{__name__}:missing", 3)
    with pytest.raises(ModelError, match="cannot import"):
        create_model("no_such_package_xyz:factory", 3)
    with pytest.raises(ModelError, match="nn.Module"):
        create_model(f"{__name__}:not_a_module", 3)
    with pytest.raises(ModelError, match="bad options"):
        create_model(f"{__name__}:user_net", 3, depth=2)


def test_entry_point_group(monkeypatch):
    ep = metadata.EntryPoint(name="lab_net", value=f"{__name__}:user_net",
                             group=ENTRY_POINT_GROUP)
    real = metadata.entry_points

    def fake(**kw):
        return [ep] if kw.get("group") == ENTRY_POINT_GROUP else real(**kw)

    monkeypatch.setattr("bodyscene.plugins.metadata.entry_points", fake)
    assert "lab_net" in list_models()
    assert isinstance(create_model("lab_net", 3), UserNet)


def test_unknown_model_names_the_alternatives():
    with pytest.raises(ModelError, match="known models are baseline, domainnet"):
        create_model("resnet9000", 3)
    with pytest.raises(ModelError, match="unknown backbone"):
        create_model("baseline", 3, backbone="resnet9000")


def test_torchvision_weights_with_other_head_load_features_keep_fresh_head(tmp_path):
    import torchvision

    torch.manual_seed(1)
    source = torchvision.models.resnet18(weights=None, num_classes=10)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    torch.manual_seed(2)
    backbone = create_backbone("resnet18", 3)
    fresh_head = backbone.head.weight.detach().clone()
    skipped = load_weights(backbone, path)
    assert sorted(skipped) == ["fc.bias", "fc.weight"]
    assert torch.equal(backbone.features.conv1.weight, source.conv1.weight)
    assert torch.equal(backbone.head.weight, fresh_head)


def test_plain_state_dict_with_matching_head_loads_all(tmp_path):
    torch.manual_seed(3)
    source = create_backbone("tiny", 4)
    path = tmp_path / "tiny.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    target = create_backbone("tiny", 4, weights=path)
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v)


def test_weights_that_do_not_fit_are_a_clear_error(tmp_path):
    torch.save(create_backbone("tiny", 3).state_dict(), tmp_path / "tiny.pt")
    with pytest.raises(ModelError, match="backbone 'small' expects"):
        create_backbone("small", 3, weights=tmp_path / "tiny.pt")
    with pytest.raises(ModelError, match="do not fit backbone 'resnet18'"):
        create_backbone("resnet18", 3, weights=tmp_path / "tiny.pt")
    (tmp_path / "junk.pt").write_text("not torch")
    with pytest.raises(ModelError, match="not a readable"):
        create_backbone("tiny", 3, weights=tmp_path / "junk.pt")
    with pytest.raises(ModelError, match="not found"):
        create_backbone("tiny", 3, weights=tmp_path / "absent.pt")


def _grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {name: (p.grad.abs().sum().item() if p.grad is not None else 0.0)
            for name, p in model.named_parameters()}


def _head(grads, stream):
    return grads[f"{stream}.head.weight"]


def _trunk(grads, stream):
    return sum(v for k, v in grads.items() if k.startswith(f"{stream}.features"))


def test_three_term_loss_reaches_each_stream_and_combined_only_does_not():
    torch.manual_seed(0)
    target = torch.tensor([0, 2])
    dn = create_model("domainnet", 3, backbone="tiny", fusion="concat-mlp")
    out = dn(_x(), _x())
    expected = (F.cross_entropy(out.fused, target) + F.cross_entropy(out.body, target)
                + F.cross_entropy(out.background, target))
    assert torch.allclose(dn.loss(out, target), expected)
    g = _grads(dn, dn.loss(out, target))
    assert _head(g, "body") > 0 and _head(g, "background") > 0
    # combined-only: the concat-mlp fused logits do not use the stream heads at all, so the
    # heads get no term of their own; the trunks still learn through the fusion.
    dn.loss_terms = "combined-only"
    out = dn(_x(), _x())
    g = _grads(dn, dn.loss(out, target))
    assert _head(g, "body") == 0 and _head(g, "background") == 0
    assert _trunk(g, "body") > 0 and _trunk(g, "background") > 0


def test_a_blanked_view_skips_its_stream_term():
    torch.manual_seed(0)
    target = torch.tensor([1, 1])
    dn = create_model("domainnet", 3, backbone="tiny")
    present = torch.tensor([[True, False], [True, False]])
    out = dn(_x(), torch.zeros(2, 3, 32, 32))
    expected = F.cross_entropy(out.fused, target) + F.cross_entropy(out.body, target)
    assert torch.allclose(dn.loss(out, target, present), expected)
    # Against combined-only, the extra gradient is the body term's: it reaches the body stream
    # and nothing of the background stream.
    all_terms = _grads(dn, dn.loss(dn(_x(), torch.zeros(2, 3, 32, 32)), target, present))
    dn.loss_terms = "combined-only"
    combined = _grads(dn, dn.loss(dn(_x(), torch.zeros(2, 3, 32, 32)), target, present))
    assert abs(_head(all_terms, "background") - _head(combined, "background")) < 1e-6
    assert abs(_head(all_terms, "body") - _head(combined, "body")) > 1e-6


@pytest.mark.parametrize("fusion", ["sum", "learned-weighted", "concat-mlp"])
def test_fusions(fusion):
    torch.manual_seed(0)
    dn = create_model("domainnet", 3, backbone="tiny", fusion=fusion)
    out = dn(_x(), _x())
    if fusion == "sum":
        assert torch.allclose(out.fused, out.body + out.background)
    if fusion == "learned-weighted":
        dn.stream_weights.data = torch.tensor([2.0, 0.5])
        out = dn(_x(), _x())
        assert torch.allclose(out.fused, 2 * out.body + 0.5 * out.background)
        g = _grads(dn, dn.loss(out, torch.tensor([0, 1])))
        assert g["stream_weights"] > 0
    if fusion == "concat-mlp":
        assert not torch.allclose(out.fused, out.body + out.background)
    with pytest.raises(ModelError, match="fusion 'max'"):
        create_model("domainnet", 3, backbone="tiny", fusion="max")


def test_readouts():
    dn = create_model("domainnet", 3, backbone="tiny")
    out = StreamLogits(body=torch.tensor([[4.0, 0, 0], [4.0, 0, 0]]),
                       background=torch.tensor([[0, 0, 9.0], [0, 0, 9.0]]),
                       fused=torch.tensor([[4.0, 0, 9.0], [4.0, 0, 9.0]]))
    present = torch.tensor([[True, False], [True, True]])
    assert torch.allclose(dn.read_out(out, "sum", present), F.softmax(out.fused, 1))
    mean = (F.softmax(out.body, 1) + F.softmax(out.background, 1)) / 2
    assert torch.allclose(dn.read_out(out, "softmax-sum", present), mean)
    stream = dn.read_out(out, "stream", present)
    assert torch.allclose(stream[0], F.softmax(out.body[0], 0))  # body alone: body stream
    assert torch.allclose(stream[1], F.softmax(out.fused[1], 0))  # both shown: fused
    assert stream[0].argmax() == 0 and dn.read_out(out, "sum", present)[0].argmax() == 2
    with pytest.raises(ModelError, match="readout"):
        dn.read_out(out, "vote", present)


def test_models_command_lists_models_and_backbones(capsys):
    from bodyscene.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == ["baseline", "domainnet"] and ENTRY_POINT_GROUP in out
    assert main(["models", "--backbones", "resnet*"]) == 0
    names = capsys.readouterr().out.split()
    assert {"resnet18", "resnet34", "resnet50"} <= set(names) and "tiny" not in names


def test_miniresnet_is_a_small_residual_net_for_64_px():
    from bodyscene.models.backbones import list_backbones

    assert "miniresnet" in list_backbones()
    net = create_backbone("miniresnet", 8)
    assert sum(p.numel() for p in net.parameters()) < 400_000   # ResNet-18: 11 M
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) >= 9
    net.eval()
    for size in (48, 64):
        assert net(torch.randn(2, 3, size, size)).shape == (2, 8)
    # every block starts as its shortcut (last BN zeroed): a stable start at a high rate
    block = net.features[3]
    x = torch.randn(2, 16, 32, 32)
    assert torch.allclose(block(x), torch.relu(x))


def test_pretrained_architectures_are_marked_and_ours_are_not():
    from bodyscene.models.registry import needs_weights, resolve_factory

    for name in ("torchvision", "r3d_18", "r2plus1d_18", "mc3_18", "s3d", "mvit_v2_s"):
        assert needs_weights(resolve_factory(name)), name
    for name in ("baseline", "domainnet", "test_clip3d"):
        assert not needs_weights(resolve_factory(name)), name


def test_state_sha256_names_the_weights():
    from bodyscene.models.weights import state_sha256

    a, b = user_net(3), user_net(3)
    b.load_state_dict(a.state_dict())
    assert state_sha256(a) == state_sha256(b)
    with torch.no_grad():
        next(b.parameters()).add_(1e-3)
    assert state_sha256(a) != state_sha256(b)
