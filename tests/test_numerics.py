import json
import subprocess
import sys

import pytest

from tvae_lib import numerics

PROBE = (
    "import json, os, torch, tvae_lib; from tvae_lib import numerics; "
    "print(json.dumps({'threads': torch.get_num_threads(), "
    "'capability': torch.backends.cpu.get_cpu_capability(), "
    "'onednn': torch.backends.mkldnn.enabled, 'in_mode': numerics.in_mode(), "
    "'mkl': os.environ.get('MKL_CBWR')}))"
)


def _run(args, env):
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_mode_environment_lays_the_settings_over_the_base():
    env = numerics.mode_environment({"OMP_NUM_THREADS": "8", "HOME": "/somewhere"})
    assert env["HOME"] == "/somewhere"  # the rest of the user's environment is kept
    assert env["OMP_NUM_THREADS"] == str(numerics.THREADS)  # whatever the machine asked for
    assert env[numerics.MODE_VARIABLE] == "reproducible"
    if numerics.cpu_supports_mode():
        assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["MKL_CBWR"] == "AVX2,STRICT"


def test_on_a_cpu_without_avx2_only_threads_are_pinned(monkeypatch):
    monkeypatch.setattr(numerics, "cpu_supports_mode", lambda: False)
    env = numerics.mode_environment({})
    assert "ATEN_CPU_CAPABILITY" not in env and "NPY_ENABLE_CPU_FEATURES" not in env
    assert env["OMP_NUM_THREADS"] == str(numerics.THREADS)


@pytest.mark.skipif(not numerics.cpu_supports_mode(), reason="needs x86-64 with AVX2")
def test_the_launcher_pins_threads_and_kernels_whatever_was_asked(monkeypatch):
    base = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "default"}
    inside = _run([sys.executable, "-m", "tvae_lib.numerics", "--", sys.executable, "-c", PROBE],
                  base)  # fmt: skip
    assert inside == {"threads": numerics.THREADS, "capability": "AVX2", "onednn": False,
                      "in_mode": True, "mkl": "AVX2,STRICT"}  # fmt: skip
    outside = _run([sys.executable, "-c", PROBE], base)
    assert outside["threads"] == 1 and outside["capability"] == "DEFAULT"
    assert outside["onednn"] and not outside["in_mode"] and outside["mkl"] is None


def test_the_launcher_explains_a_missing_or_unknown_command(capsys):
    assert numerics.main([]) == 2
    assert "give a command" in capsys.readouterr().err
    assert numerics.main(["--", "surely-no-such-command-xyz"]) == 127
    assert "command not found" in capsys.readouterr().err


def test_show_lists_every_setting(capsys):
    assert numerics.main(["--show"]) == 0
    shown = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    assert shown == numerics.mode_environment({})


def test_describe_names_the_state():
    text = numerics.describe()
    if numerics.in_mode():
        assert text.startswith("reproducible numeric mode")
        assert f"{numerics.THREADS} threads" in text and "oneDNN off" in text
    else:
        assert text.startswith("machine's own numeric setting")


def test_checkpoint_training_restarts_inside_the_mode(tmp_path):
    # started outside the mode; an unknown run name stops it right after it reports its state
    out = subprocess.run(
        [sys.executable, "-m", "tvae_lib.train_tvae", "--runs", "no_such_run"],
        env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode != 0 and "unknown run 'no_such_run'" in out.stderr
    expected = "reproducible numeric mode" if numerics.cpu_supports_mode() else "machine's own"
    assert out.stdout.startswith(f"training in the {expected}"), out.stdout
