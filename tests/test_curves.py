"""nndoctor.curves on synthetic loss curves: each failure shape is named, noise does not change
the verdict, and the floor / constant level / accuracies change it where they should."""

import math
import random

import pytest

from nndoctor.curves import Pattern, classify, never_beat, out_of_reach, sample_points, unbounded_below

TARGET = 0.07  # the goal these curves missed (5% of ln 4)


def decay(steps, start, rate, floor=0.0, noise=0.0, seed=0):
    """Exponential convergence towards ``floor``, with optional multiplicative noise."""
    rnd = random.Random(seed)
    return [floor + (start - floor) * math.exp(-rate * i) * (1 + noise * rnd.uniform(-1, 1)) for i in range(steps + 1)]


def steep_drop(steps, start, level, within=4):
    return [(start - level) * math.exp(-i / within) + level for i in range(steps + 1)]


@pytest.mark.parametrize("noise", [0.0, 0.03])
def test_slow_steady_decay_is_still_falling_with_a_projection(noise):
    reading = classify(decay(300, 1.4, 0.006, noise=noise), TARGET)
    assert reading.pattern is Pattern.STILL_FALLING
    assert reading.steps_to_target == pytest.approx(200, rel=0.1)  # ln(0.23 / 0.07) / 0.006


def test_decay_by_a_percent_per_quarter_run_is_a_plateau():
    reading = classify(decay(300, 1.4, 0.0002), TARGET)
    assert reading.pattern is Pattern.PLATEAU
    assert reading.tail_drop < 0.05


def test_accelerating_fall_is_still_falling():
    """A sigmoid-shaped start (slow, then faster) is learning, however far the target still is."""
    losses = [1.4 - 0.5 * (i / 300) ** 2 for i in range(301)]
    assert classify(losses, TARGET).pattern is Pattern.STILL_FALLING


def test_fall_that_stops_within_the_last_quarter_is_not_still_falling():
    """Falling until step 250, flat after (units dying, a cap reached): the tail as a whole
    dropped, but its second half did not."""
    losses = [1.4 * math.exp(-0.004 * min(i, 250)) for i in range(301)]
    reading = classify(losses, TARGET)
    assert reading.tail_drop > 0.05 and reading.pace < 0.25
    assert reading.pattern is Pattern.PLATEAU


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_flat_curve_is_a_plateau_not_an_oscillation(noise):
    reading = classify(decay(300, 1.39, 0.0, noise=noise), TARGET)
    assert reading.pattern is Pattern.PLATEAU
    assert abs(reading.progress) < 0.05


def test_steep_drop_then_flat():
    reading = classify(steep_drop(300, start=10.0, level=1.0), TARGET)
    assert reading.pattern is Pattern.DROP_THEN_FLAT
    assert reading.level == pytest.approx(1.0, rel=1e-3)


def test_gradual_approach_to_a_high_level_is_a_plateau():
    """A loss that takes ~100 steps to settle on a level above its floor was not dropped steeply."""
    reading = classify(steep_drop(1000, start=1.37, level=0.744, within=60), TARGET)
    assert reading.pattern is Pattern.PLATEAU


def test_drop_to_the_constant_level_from_near_it_is_a_plateau():
    """Learning only the class prior is not an initialization problem."""
    curve = steep_drop(300, start=1.39, level=0.7)
    assert classify(curve, TARGET).pattern is Pattern.DROP_THEN_FLAT
    assert classify(curve, TARGET, constant_level=0.7).pattern is Pattern.PLATEAU


def test_drop_to_the_constant_level_from_far_above_it_is_a_bad_init():
    curve = steep_drop(300, start=30.0, level=1.37)
    assert classify(curve, TARGET, constant_level=1.37).pattern is Pattern.DROP_THEN_FLAT


def test_alternating_loss_is_oscillating():
    curve = [1.4 if i % 2 == 0 else 0.8 for i in range(301)]
    reading = classify(curve, TARGET)
    assert reading.pattern is Pattern.OSCILLATING
    assert reading.flips == 1.0


def test_nan_is_exploding_at_its_step():
    reading = classify([1.4, 2.0, 30.0, 1e4, 1e9, float("nan")], TARGET)
    assert reading.pattern is Pattern.EXPLODING
    assert reading.nonfinite_step == 5
    assert reading.peak == 1e9


def test_jumps_by_orders_of_magnitude_are_exploding():
    reading = classify([1.4, 50.0, 3.0, 900.0, 20.0, 40.0] + [36.0] * 100, TARGET)
    assert reading.pattern is Pattern.EXPLODING


def test_spike_then_recovery_to_a_flat_level_is_exploding():
    reading = classify([1.4, 80.0, 20.0, 1.6] + [1.3] * 300, TARGET)
    assert reading.pattern is Pattern.EXPLODING


def test_steady_rise_is_rising_even_when_large():
    reading = classify([1.4 * 1.02**i for i in range(301)], TARGET)  # x400 in small, steady steps
    assert reading.pattern is Pattern.RISING


def test_falling_loss_with_falling_accuracy_is_rising():
    losses = decay(300, 1.4, 0.001)
    falling = [0.6 - 0.5 * i / 300 for i in range(301)]
    assert classify(losses, TARGET).pattern is not Pattern.RISING
    assert classify(losses, TARGET, accuracies=falling).pattern is Pattern.RISING


def test_loss_diving_far_below_its_floor_is_rising():
    losses = [-1.4 * 1.03**i for i in range(301)]  # e.g. -CrossEntropy, unbounded below
    assert classify(losses, TARGET).pattern is Pattern.RISING
    assert unbounded_below(-1.4, losses[-1], floor=0.0)
    assert not unbounded_below(1.4, 0.01, floor=0.0)


def test_floor_tells_steady_convergence_from_a_plateau():
    """Label smoothing: the loss converges to 0.35, not to 0. Measured against that floor the
    curve still falls at its full pace; measured against 0 it has gone flat."""
    losses = decay(300, 1.4, 0.03, floor=0.35)
    target = 0.35 + 1e-4
    assert classify(losses, target, floor=0.35).pattern is Pattern.STILL_FALLING
    assert classify(losses, target, floor=0.0).pattern is Pattern.PLATEAU


def test_never_beat_is_measured_against_the_gap_to_the_floor():
    assert never_beat(best=1.36, constant_level=1.37)
    assert not never_beat(best=1.2, constant_level=1.37)
    assert never_beat(best=0.409, constant_level=0.41, floor=0.35)
    assert not never_beat(best=0.40, constant_level=0.41, floor=0.35)  # 1/6 of the way to the floor


def test_short_curve_is_classified_without_error():
    assert classify([1.4, float("inf")], TARGET).pattern is Pattern.EXPLODING
    assert classify([1.4], TARGET).pattern is Pattern.PLATEAU


def test_sample_points_spread_over_the_run():
    assert sample_points(1000) == [0, 4, 16, 63, 251, 1000]
    assert sample_points(3) == [0, 1, 2, 3]
    assert sample_points(0) == [0]


# --- out_of_reach: stopping a run whose goal it cannot reach --------------------------------------


def test_a_flat_run_is_out_of_reach_once_judged_never_before():
    flat = [2.3 + 0.01 * math.sin(i) for i in range(301)]
    assert out_of_reach(flat, goal=0.1, floor=0.0, budget=1000)
    assert not out_of_reach(flat[:250], goal=0.1, floor=0.0, budget=1000)  # before 30% of the budget


def test_a_run_falling_fast_enough_is_never_stopped():
    """Exponential decay that reaches the goal at step ~1050: within three times its pace of the
    budget, so it runs on (the margin is for curves that speed up, as after a plateau)."""
    falling = [2.3 * math.exp(-0.003 * i) for i in range(301)]
    assert not out_of_reach(falling, goal=0.1, floor=0.0, budget=1000)
    slower = [2.3 * math.exp(-0.0005 * i) for i in range(301)]  # needs ~6000 steps
    assert out_of_reach(slower, goal=0.1, floor=0.0, budget=1000)


def test_a_plateau_above_a_floor_is_judged_on_the_excess():
    """Label smoothing: the floor is 0.5, the goal 0.55; a run at 0.6 falling towards 0.55 at a
    good pace on the excess is not out of reach, though the raw loss barely moves."""
    near = [0.5 + 0.1 * math.exp(-0.004 * i) * 3 for i in range(401)]
    assert not out_of_reach(near, goal=0.55, floor=0.5, budget=1000)
    assert out_of_reach([0.9] * 401, goal=0.55, floor=0.5, budget=1000)
