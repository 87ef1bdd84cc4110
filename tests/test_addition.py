import pytest
import torch

from tvae_lib import addition


def test_vocabulary():
    assert addition.VOCAB == "0123456789+ _" and len(addition.VOCAB) == 13
    assert addition.CHAR_TO_ID["7"] == 7  # a digit's id is its value
    assert addition.VOCAB[addition.PAD_ID] == " " and addition.VOCAB[addition.START_ID] == "_"
    assert (addition.QUESTION_LEN, addition.TARGET_LEN) == (7, 5)


def test_problems_are_correct_distinct_and_in_range():
    problems = addition.make_problems(2_000, seed=1)
    assert len(problems) == len(set(problems)) == 2_000
    for question, answer in problems:
        a, b = (int(part) for part in question.split("+"))
        assert 0 <= a <= 999 and 0 <= b <= 999 and int(answer) == a + b
        assert str(a) + "+" + str(b) == question  # no leading zeros
    lengths = {len(question) for question, _ in problems}
    assert lengths == {3, 4, 5, 6, 7}  # short and long problems both occur


def test_problems_are_deterministic():
    assert addition.make_problems(100, seed=3) == addition.make_problems(100, seed=3)
    assert addition.make_problems(100, seed=3) != addition.make_problems(100, seed=4)


def test_make_problems_bad_n():
    with pytest.raises(ValueError, match="n must be"):
        addition.make_problems(0)
    with pytest.raises(ValueError, match="n must be"):
        addition.make_problems(2_000_000)


def test_encode_literal_and_round_trip():
    ids = addition.encode(["57+5", "_62"], 7)
    assert ids.dtype == torch.long and ids.shape == (2, 7)
    assert ids[0].tolist() == [5, 7, 10, 5, 11, 11, 11]
    assert ids[1].tolist() == [12, 6, 2, 11, 11, 11, 11]
    assert addition.decode(ids) == ["57+5", "62"]
    assert addition.decode(ids, strip=False) == ["57+5   ", "_62    "]
    assert addition.decode(ids[0]) == ["57+5"]  # a single (L,) sequence
    assert addition.encode("1+1", 3).shape == (1, 3)
    problems = addition.make_problems(500)
    questions = [question for question, _ in problems]
    assert addition.decode(addition.encode(questions, 7)) == questions


def test_encode_decode_bad_inputs():
    with pytest.raises(ValueError, match="longer than length=3"):
        addition.encode(["1234"], 3)
    with pytest.raises(ValueError, match=r"not in"):
        addition.encode(["1-2"], 5)
    with pytest.raises(ValueError, match=r"shape \(N, L\)"):
        addition.decode(torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(N, L\)"):
        addition.decode(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"must lie in \[0, 12\]"):
        addition.decode(torch.tensor([[13]]))


def test_load_addition_shapes_split_and_reverse():
    data = addition.load_addition(n=600, n_test=100, seed=2)
    assert data.x_train.shape == (500, 7) and data.t_train.shape == (500, 5)
    assert data.x_test.shape == (100, 7) and data.t_test.shape == (100, 5)
    assert (data.t_train[:, 0] == addition.START_ID).all()
    assert addition.decode(data.x_test) == data.questions_test
    assert addition.decode(data.t_test) == data.answers_test
    train = set(addition.decode(data.x_train))
    assert not train & set(data.questions_test)  # held-out problems are new
    reversed_data = addition.load_addition(n=600, n_test=100, seed=2, reverse=True)
    torch.testing.assert_close(reversed_data.x_test, data.x_test.flip(-1))
    torch.testing.assert_close(reversed_data.t_test, data.t_test)  # answers stay in order
    with pytest.raises(ValueError, match="n_test"):
        addition.load_addition(n=100, n_test=100)


def test_make_loader_batches_and_shuffles_reproducibly():
    x, t = torch.arange(10)[:, None].repeat(1, 7), torch.arange(10)[:, None].repeat(1, 5)
    batches = list(addition.make_loader(x, t, batch_size=4))
    assert [b[0].shape for b in batches] == [(4, 7), (4, 7), (2, 7)]
    assert batches[0][0][:, 0].tolist() == [0, 1, 2, 3]

    def order(seed):
        loader = addition.make_loader(
            x, t, 4, shuffle=True, generator=torch.Generator().manual_seed(seed)
        )
        return torch.cat([xb[:, 0] for xb, _ in loader]).tolist()

    assert order(0) == order(0) and sorted(order(0)) == list(range(10))
    assert order(0) != list(range(10))
    with pytest.raises(ValueError, match="same N"):
        addition.make_loader(x, t[:5], 4)
