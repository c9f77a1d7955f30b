"""Pass planning (brainrank/core/extraction/planning.py): layers grouped into passes within
the memory budget, passes by need, and the chunks of a streamed extraction."""

from __future__ import annotations


def test_plan_groups_layers_and_slices_big_ones():
    from brainrank.core.extraction import LayerInfo, plan_passes

    layers = [
        LayerInfo(name, name, (size,), size)
        for name, size in [("a", 1000), ("b", 1500), ("c", 10_000), ("d", 10)]
    ]
    plan = plan_passes(layers, n=100, budget=2**20)  # 1 MiB = 2621 columns of 100 rows
    assert [[(s.layer, s.start, s.stop) for s in p] for p in plan] == [
        [("a", 0, 1000), ("b", 0, 1500)],
        [("c", 0, 2621)], [("c", 2621, 5242)], [("c", 5242, 7863)], [("c", 7863, 10_000)],
        [("d", 0, 10)],
    ]  # fmt: skip


def _resnet_like():
    """Layer sizes shaped like resnet18's (large early layers): 5.4 GB for 200 images."""
    from brainrank.core.extraction import LayerInfo

    sizes = [802_816] * 3 + [200_704] * 13 + [100_352] * 10 + [50_176] * 10 + [25_088] * 10
    return [LayerInfo(f"l{i}", f"l{i}", (s,), s) for i, s in enumerate([*sizes, 512, 1000])]


def _covers_in_order(plan, layers) -> None:
    spans = [(p.layer, p.start, p.stop) for slices in plan for p in slices]
    assert [layer for layer, _, _ in spans] == [layer.name for layer in layers]
    assert all(
        start == 0 and stop == layer.size
        for (_, start, stop), layer in zip(spans, layers, strict=True)
    )


def test_plan_by_need_trades_a_few_passes_over_few_images_for_memory():
    from brainrank.core.extraction import plan_balanced, plan_by_need, planning

    budget = 4 * 2**30
    layers = _resnet_like()
    fewest, by_need = plan_balanced(layers, 200, budget), plan_by_need(layers, 200, budget)
    assert len(fewest) == 2
    assert len(fewest) < len(by_need) <= len(fewest) + planning.SPARE_IMAGES // 200
    largest = planning._largest(by_need, 200)
    assert planning.SMALLEST_PASS_BYTES <= largest < 0.6 * planning._largest(fewest, 200)
    _covers_in_order(by_need, layers)
    # many images: every extra pass runs them all again, so the fewest passes are kept
    many = plan_balanced(layers, 1000, budget)
    assert plan_by_need(layers, 1000, budget) == many
    # one more pass at most where it runs at most SPARE_IMAGES images
    n = planning.SPARE_IMAGES
    assert len(plan_balanced(layers, n, budget)) <= len(plan_by_need(layers, n, budget))
    assert len(plan_by_need(layers, n, budget)) <= len(plan_balanced(layers, n, budget)) + 1
    # small runs are not split below the smallest pass buffer
    small = layers[-12:]
    assert plan_by_need(small, 200, budget) == plan_balanced(small, 200, budget)
    assert len(plan_by_need(small, 200, budget)) == 1


def test_stream_chunks_are_the_fewest_that_fit_and_as_equal_as_batches_allow():
    from brainrank.core.extraction import stream_chunk

    per_image = 4 * 1_075_688  # alexnet's layers, float32
    big = 10_000  # no cap on the images per chunk
    assert stream_chunk(1000, per_image, 8 * 2**30, 50, big) == 1000  # everything fits
    assert stream_chunk(1000, per_image, 4 * 2**30, 50, big) == 500  # 1.002 budgets: 2 x 500
    assert stream_chunk(1000, per_image, 2**29, 50) == 100  # 124 fit: 10 chunks of 100
    assert stream_chunk(13, 640_000, 2**20, 4) == 4  # less than one batch fits: one batch
    # at most STREAM_IMAGES (256) images per chunk whatever the budget, balanced
    assert stream_chunk(1000, per_image, 8 * 2**30, 50) == 250  # 4 x 250
    assert stream_chunk(200, per_image, 8 * 2**30, 32) == 200  # all fit under the cap
    assert stream_chunk(300, 4, 8 * 2**30, 32) == 160  # 2 chunks: 160 + 140
    for n, budget, batch in [(1000, 2**29, 50), (997, 3 * 2**28, 32), (13, 2**21, 5)]:
        chunk = stream_chunk(n, per_image if n > 13 else 640_000, budget, batch)
        fit = budget // (per_image if n > 13 else 640_000)
        assert chunk % batch == 0 and (chunk <= fit or chunk == batch)
        chunks = -(-n // chunk)
        assert chunks == -(-n // max(batch, fit // batch * batch))  # no more chunks than needed
