"""The HTTP-level fault hook: 503 while cut off, latency, error rates with their codes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from milkyway.sim import faults
from milkyway.sim.apiserver.errors import ApiError
from milkyway.sim.faults import ApiFaultState


def request(path: str = "/api/v1/pods") -> SimpleNamespace:
    return SimpleNamespace(path=path)


async def test_cut_off_answers_503_for_api_paths() -> None:
    state = ApiFaultState(seed=1)
    await state.hook(request())  # type: ignore[arg-type]
    state.unavailable = True
    with pytest.raises(ApiError) as err:
        await state.hook(request())  # type: ignore[arg-type]
    assert err.value.code == 503


@pytest.mark.parametrize("code", [429, 500, 503])
async def test_error_rate_one_fails_every_request_with_the_code(code: int) -> None:
    state = ApiFaultState(seed=1)
    state.error_rate, state.error_code = 1.0, code
    for _ in range(5):
        with pytest.raises(ApiError) as err:
            await state.hook(request())  # type: ignore[arg-type]
        assert err.value.code == code


async def test_error_rate_is_seeded_and_roughly_the_fraction() -> None:
    outcomes = []
    for _ in range(2):
        state = ApiFaultState(seed=42)
        state.error_rate = 0.3
        failed = 0
        for _ in range(1000):
            try:
                await state.hook(request())  # type: ignore[arg-type]
            except ApiError:
                failed += 1
        outcomes.append(failed)
    assert outcomes[0] == outcomes[1]
    assert 200 < outcomes[0] < 400


async def test_latency_waits_the_configured_time(monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(faults.asyncio, "sleep", fake_sleep)
    state = ApiFaultState()
    state.latency = 0.25
    await state.hook(request())  # type: ignore[arg-type]
    assert waited == [0.25]
