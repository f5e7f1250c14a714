"""FitState: the one owner of the fitted unknowns and of how a stage optimises them."""

import pytest
import torch

from engine.fit.state import FitState


def _state(num_views: int = 2) -> FitState:
    mask = torch.tensor([1.0, 0.0, 1.0])
    return FitState.initial(num_views, 4, mask, [(100, 200)] * num_views, "cpu")


def test_optimising_moves_only_the_named_unknowns_and_freezes_them_after():
    state = _state()
    start = {name: getattr(state, name).clone() for name in ("identity", "rotation", "sh")}
    with state.optimising({"identity": 0.1, "expression": 0.1}) as groups:
        assert [g["lr"] for g in groups] == [0.1, 0.1]
        assert state.identity.requires_grad and not state.rotation.requires_grad
        optimiser = torch.optim.Adam(groups)
        loss = ((state.identity - 1) ** 2).sum() + ((state.expression - 0.5) ** 2).sum()
        loss.backward()
        optimiser.step()
        state.constrain_()
    assert not state.identity.requires_grad and state.identity.grad is None
    assert not torch.equal(state.identity, start["identity"])
    assert torch.equal(state.rotation, start["rotation"]) and torch.equal(state.sh, start["sh"])
    # the held expression (mask 0) did not move; the free ones did
    assert torch.all(state.expression[:, 1] == 0) and torch.all(state.expression[:, 0] > 0)


def test_constrain_keeps_weights_in_unit_range():
    state = _state()
    state.expression += torch.tensor([2.0, 0.0, -1.0])
    state.constrain_()
    assert state.expression.max() == 1.0 and state.expression.min() == 0.0


def test_an_unknown_name_is_refused():
    with pytest.raises(KeyError, match="principal_point"), _state().optimising(
            {"principal_point": 0.1}):
        pass
    with pytest.raises(KeyError, match="identiy"), _state().optimising(
            {"identity": 0.1}, hold=("identiy",)):
        pass


def test_held_unknowns_get_no_group_and_stay_frozen():
    state = _state()
    with state.optimising({"identity": 0.1, "expression": 0.1}, hold=("expression",)) as groups:
        assert [g["params"][0] is state.identity for g in groups] == [True]
        assert state.identity.requires_grad and not state.expression.requires_grad


def test_translation_follows_offset_and_depth_and_views_share_identity():
    state = _state()
    state.offset[1] = torch.tensor([0.1, -0.2])
    state.log_depth[1] = torch.log(torch.tensor(50.0))
    assert torch.allclose(state.translation[1], torch.tensor([5.0, -10.0, 50.0]))
    second = state.views(slice(1, 2))
    assert second.num_views == 1 and second.identity is state.identity
    assert torch.allclose(second.camera().translation[0], state.translation[1])
    assert torch.allclose(state.camera().focal[:, 0], torch.full((2,), 240.0))
