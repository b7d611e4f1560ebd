"""Slot choice of the llama.cpp server engine: interleaved conversations keep their own slot."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "zoos" / "bindings"))
from llamacpp_binding.slot_affinity import SlotAffinity, shared_prefix  # noqa: E402

SYSTEM = "<|im_start|>system\n" + "You are a careful assistant. " * 50


def turn(history: str, question: str) -> str:
    return f"{history}<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


def test_shared_prefix_text_tokens_and_kinds() -> None:
    assert shared_prefix("abcdef", "abcxyz") == 3
    assert shared_prefix("abc", "abc") == 3
    assert shared_prefix("", "abc") == 0
    assert shared_prefix([1, 2, 3, 4], [1, 2, 9]) == 2
    assert shared_prefix("abc", [1, 2]) == 0


def test_interleaved_conversations_each_keep_their_slot() -> None:
    slots = SlotAffinity(2)
    convo = {"a": SYSTEM, "b": SYSTEM}
    seen: dict[str, set[int]] = {"a": set(), "b": set()}
    for n in range(5):
        for c in ("a", "b"):
            prompt = turn(convo[c], f"question {n} of {c}")
            i = slots.take(prompt)
            assert i is not None
            seen[c].add(i)
            slots.release(i, prompt)
            convo[c] = prompt + "an answer<|im_end|>\n"
    # similarity alone would put b on a's slot (they share the long system prompt); each keeps its own
    assert len(seen["a"]) == 1 and len(seen["b"]) == 1 and seen["a"] != seen["b"]


def test_busy_slots_are_not_pinned_and_lru_is_evicted() -> None:
    slots = SlotAffinity(2)
    first, second = slots.take(turn(SYSTEM, "one")), slots.take(turn(SYSTEM, "two"))
    assert {first, second} == {0, 1}
    assert slots.take(turn(SYSTEM, "three")) is None  # all busy: the server queues it
    assert first is not None and second is not None
    slots.release(first, turn(SYSTEM, "one"))
    slots.release(second, turn(SYSTEM, "two"))
    # a new conversation: no slot continues it; the least recently used one is reused
    assert slots.take(turn(SYSTEM, "four")) == first


def test_restart_forgets_what_slots_held() -> None:
    slots = SlotAffinity(2)
    i = slots.take(turn(SYSTEM, "one"))
    assert i is not None
    slots.release(i, turn(SYSTEM, "one"))
    slots.forget()
    j = slots.take(turn(SYSTEM, "one") + "more")
    assert j is not None and j != i  # nothing is continued any more: the slot it last held is not preferred


def test_multimodal_prompts_are_matched_by_their_text() -> None:
    """An image prompt ({prompt_string, multimodal_data}) is remembered by its text (markers for the images)."""
    slots = SlotAffinity(2)
    text = turn(SYSTEM, "<__media__>\nWhat is it?")
    first = {"prompt_string": text, "multimodal_data": ["aGVsbG8="]}
    slots.take("unrelated")  # slot 0 busy
    chosen = slots.take(first)
    assert chosen == 1
    slots.release(0, "unrelated")
    slots.release(chosen, first)  # the most recently used: only its text makes it the choice below
    follow_up = turn(text + "A dot.<|im_end|>\n", "And its colour?")
    assert slots.take({"prompt_string": follow_up, "multimodal_data": ["aGVsbG8="]}) == 1
