import pytest
import torch

from realtime.gpu.graphs import GraphReplay

pytestmark = pytest.mark.gpu


def _two_outputs(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x * 2 + y, x - y


def test_replays_follow_their_inputs_and_hand_out_copies():
    replay = GraphReplay(_two_outputs, torch.device("cuda"))
    a, b = torch.randn(4, 8, device="cuda"), torch.randn(4, 8, device="cuda")
    first = replay(a, b)
    second = replay(b, a)  # replays the captured graph on new inputs
    torch.testing.assert_close(first[0], a * 2 + b)  # the first result was not overwritten by the second replay
    torch.testing.assert_close(second[0], b * 2 + a)
    torch.testing.assert_close(second[1], b - a)
    assert replay.replays == 2 and replay.graph is not None


def test_a_single_output_comes_back_as_a_tensor_and_other_shapes_are_refused():
    replay = GraphReplay(lambda x: x.sin(), torch.device("cuda"))
    x = torch.randn(16, device="cuda")
    torch.testing.assert_close(replay(x), x.sin())
    with pytest.raises(ValueError, match="captured for"):
        replay(torch.randn(8, device="cuda"))


def test_a_call_on_another_stream_waits_for_the_previous_call():
    replay = GraphReplay(lambda x: x * 3, torch.device("cuda"))
    replay(torch.zeros(1 << 20, device="cuda"))  # capture
    slow, fast = torch.cuda.Stream(), torch.cuda.Stream()
    a, b = torch.full((1 << 20,), 1.0, device="cuda"), torch.full((1 << 20,), 2.0, device="cuda")
    torch.cuda.synchronize()
    with torch.cuda.stream(slow):
        torch.cuda._sleep(50_000_000)  # ~tens of ms of GPU time before this stream's call runs
        first = replay(a)
    with torch.cuda.stream(fast):
        second = replay(b)  # without the wait its input copy would land before the slow call's replay
    torch.cuda.synchronize()
    assert float(first.min()) == float(first.max()) == 3.0
    assert float(second.min()) == 6.0
