"""Energy sensor backends against recorded trees whose values follow a known power trace: the
integral the sampler measures is within 5% of the trace's; each tegrastats format parses; a RAPL
counter that rolls over is unwrapped; what cannot be read is a reason, not a number."""

import os
import stat
import sys
import time
import types
from pathlib import Path

import pytest
from power_trees import RaplTree, Trace, hwmon_tree, iio_tree, ina238_tree, wavy, wavy_integral, write_value

from edgeprune.bench.energy.detect import candidates, open_sensor
from edgeprune.bench.energy.rapl import Counter
from edgeprune.bench.energy.rpi import parse_pmic
from edgeprune.bench.energy.sampler import Sampler, integrate
from edgeprune.bench.energy.sensor import NotMeasured, SensorError
from edgeprune.bench.energy.tegrastats import parse_line, total
from edgeprune.errors import UserError

JETSON = ("ina3221", "hwmon", "VDD_IN")


@pytest.fixture
def root(tmp_path, monkeypatch):
    r = tmp_path / "root"
    r.mkdir()
    monkeypatch.setenv("EDGEPRUNE_SYSFS_ROOT", str(r))
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ["PATH"])
    (tmp_path / "bin").mkdir()
    return r


def measured_vs_trace(sensor, trace, seconds=1.2):
    with trace, Sampler(sensor) as s:
        time.sleep(0.05)
        t0 = time.perf_counter()
        time.sleep(seconds)
        t1 = time.perf_counter()
        got = s.energy(t0, t1)
        rate = s.rate_hz(t0, t1)
    return got, wavy_integral(t0 - trace.start, t1 - trace.start), rate


def test_ina3221_hwmon_energy_follows_the_trace(root):
    put = hwmon_tree(root, {"VDD_IN": 4.0, "VDD_CPU_GPU_CV": 1.0, "VDD_SOC": 1.0}, chips=1)
    sensor = open_sensor("auto", *JETSON)
    assert sensor.backend == "ina3221-hwmon" and sensor.rail == "VDD_IN" and "curr1_input" in sensor.source
    got, want, rate = measured_vs_trace(sensor, Trace(put["VDD_IN"], wavy()))
    assert got == pytest.approx(want, rel=0.05)
    assert rate >= 90  # asked for 100 Hz


def test_agx_orin_without_an_input_rail_sums_the_rails_of_both_chips(root):
    put = hwmon_tree(root, {"VDD_GPU_SOC": 2.0, "VDD_CPU_CV": 1.0, "VIN_SYS_5V0": 3.0, "VDDQ_VDD2_1V8AO": 0.5}, chips=2)
    sensor = open_sensor("auto", "ina3221", "hwmon", "")
    assert sensor.rail == "sum(VDD_GPU_SOC,VDD_CPU_CV,VIN_SYS_5V0,VDDQ_VDD2_1V8AO)"
    assert sensor.read() == pytest.approx(6.5, abs=0.01)
    put["VIN_SYS_5V0"](4.0)
    assert sensor.read() == pytest.approx(7.5, abs=0.01)


def test_ina3221_iio_of_jetpack4_follows_the_trace(root):
    put = iio_tree(root, {"POM_5V_IN": 3.0, "POM_5V_GPU": 0.5, "POM_5V_CPU": 0.8})
    sensor = open_sensor("auto", "ina3221", "iio", "POM_5V_IN")
    assert sensor.backend == "ina3221-iio" and sensor.rail == "POM_5V_IN"
    got, want, _ = measured_vs_trace(sensor, Trace(put["POM_5V_IN"], wavy()))
    assert got == pytest.approx(want, rel=0.05)


def test_ina238_of_thor(root):
    put = ina238_tree(root)
    put(40.0)
    sensor = open_sensor("ina238", "ina3221", "hwmon", "VDD_IN")
    assert sensor.read() == pytest.approx(40.0)
    trace = Trace(put, wavy(base=40, swing=10))
    with trace, Sampler(sensor) as s:
        t0 = time.perf_counter()
        time.sleep(1.0)
        t1 = time.perf_counter()
        got = s.energy(t0, t1)
    assert got == pytest.approx(wavy_integral(t0 - trace.start, t1 - trace.start, base=40, swing=10), rel=0.05)


def test_rapl_counter_wraps_and_energy_follows_the_trace(root):
    tree = RaplTree(root, range_uj=3_000_000)  # 3 J: a 4 W trace rolls over every 0.75 s
    sensor = open_sensor("auto", "none", "none", "")
    assert sensor.backend == "rapl" and sensor.kind == "energy" and sensor.rail == "package-0"
    got, want, _ = measured_vs_trace(sensor, Trace(tree.put, wavy()), seconds=2.0)
    assert want > 6.0  # more than two roll-overs in the window
    assert got == pytest.approx(want, rel=0.05)


def test_rapl_counter_unwraps_each_roll_over(tmp_path):
    f = tmp_path / "energy_uj"
    write_value(f, 900)
    c = Counter("package-0", f, 1000)
    for raw, want in ((950, 950), (20, 1020), (500, 1500), (10, 2010)):
        write_value(f, raw)
        assert c.joules() == pytest.approx(want * 1e-6)


def test_permission_denied_is_not_measured_with_the_path(root, monkeypatch):
    RaplTree(root)
    energy = root / "sys/class/powercap/intel-rapl:0/energy_uj"
    if os.geteuid() != 0:
        energy.chmod(0)
    else:  # root reads any file: refuse this one as the kernel refuses a non-root reader
        real = Path.read_text

        def read_text(self, *a, **k):
            if self == energy:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self, *a, **k)

        monkeypatch.setattr(Path, "read_text", read_text)
    with pytest.raises(NotMeasured, match=f"^not measured: permission denied reading {energy}$"):
        open_sensor("auto", "none", "none", "")
    with pytest.raises(NotMeasured, match="permission denied"):  # asked for by name: the same reason
        open_sensor("rapl", "none", "none", "")
    assert stat.S_ISREG(energy.stat().st_mode)


def test_no_sensor_says_what_it_looked_for(root):
    with pytest.raises(NotMeasured) as got:
        open_sensor("auto", *JETSON)
    reason = str(got.value)
    assert reason.startswith("not measured: no power sensor found (")
    for looked in ("jetson-stats", "ina3221", "ina238", "tegrastats is not on PATH"):
        assert looked in reason, reason
    with pytest.raises(NotMeasured, match="--energy none"):
        open_sensor("none", *JETSON)


def test_a_backend_asked_for_by_name_that_is_absent_is_an_error(root):
    with pytest.raises(UserError, match="^--energy tegrastats: tegrastats is not on PATH$"):
        open_sensor("tegrastats", *JETSON)
    with pytest.raises(UserError, match="--energy must be one of auto, none, jtop"):
        open_sensor("watts", *JETSON)


def test_a_sensor_file_that_disappears_mid_run_stops_the_measurement(root):
    hwmon_tree(root, {"VDD_IN": 4.0})
    sensor = open_sensor("auto", *JETSON)
    with Sampler(sensor) as s:
        time.sleep(0.05)
        (next(root.glob("sys/bus/i2c/drivers/ina3221/*/hwmon/*")) / "curr1_input").unlink()
        t = time.perf_counter()
        with pytest.raises(SensorError, match=r"VDD_IN: cannot read .*curr1_input"):
            s.wait_past(t + 0.1)


TEGRASTATS = {
    "jp4-nano": ("RAM 1563/3956MB (lfb 115x4MB) SWAP 0/1978MB (cached 0MB) IRAM 0/252kB(lfb 252kB) "
                 "CPU [8%@1479,3%@1479,2%@1479,1%@1479] EMC_FREQ 2%@1600 GR3D_FREQ 0%@921 APE 25 PLL@27C "
                 "CPU@29.5C PMIC@100C GPU@27.5C AO@35.5C thermal@28.25C POM_5V_IN 2193/2193 POM_5V_GPU 40/40 "
                 "POM_5V_CPU 442/442",
                 {"POM_5V_IN": 2.193, "POM_5V_GPU": 0.040, "POM_5V_CPU": 0.442}, "POM_5V_IN"),
    "jp4-xavier": ("RAM 2102/7764MB (lfb 1111x4MB) SWAP 0/3882MB (cached 0MB) CPU [3%@1190,1%@1190,off,off,off,off] "
                   "EMC_FREQ 0% GR3D_FREQ 0% AO@37C GPU@37.5C PMIC@100C AUX@36.5C CPU@38C thermal@37.2C "
                   "VDD_IN 1038/1134 VDD_CPU_GPU_CV 163/200 VDD_SOC 571/572",
                   {"VDD_IN": 1.038, "VDD_CPU_GPU_CV": 0.163, "VDD_SOC": 0.571}, "VDD_IN"),
    "jp5-agx-orin": ("12-03-2026 18:41:07 RAM 3522/30536MB (lfb 6612x4MB) SWAP 0/15268MB (cached 0MB) "
                     "CPU [1%@729,0%@729,0%@729,0%@729] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[0,0] VIC_FREQ 729 "
                     "APE 174 CV0@-256C CPU@41.218C SOC2@37.593C SOC0@38.875C CV1@-256C GPU@-256C tj@41.218C "
                     "SOC1@37.843C CV2@-256C VDD_GPU_SOC 2390mW/2390mW VDD_CPU_CV 398mW/398mW "
                     "VIN_SYS_5V0 3522mW/3522mW VDDQ_VDD2_1V8AO 302mW/302mW",
                     {"VDD_GPU_SOC": 2.390, "VDD_CPU_CV": 0.398, "VIN_SYS_5V0": 3.522, "VDDQ_VDD2_1V8AO": 0.302},
                     "sum(VDD_GPU_SOC,VDD_CPU_CV,VIN_SYS_5V0,VDDQ_VDD2_1V8AO)"),
    "jp6-orin-nano": ("12-03-2026 18:41:07 RAM 2311/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB) "
                      "CPU [2%@1510,1%@1510,0%@1510,0%@1510,0%@729,0%@729] GR3D_FREQ 0% cpu@47.5C soc2@46.1C "
                      "soc0@46.4C gpu@46.8C tj@47.5C soc1@45.9C VDD_IN 4512mW/4512mW VDD_CPU_GPU_CV 580mW/580mW "
                      "VDD_SOC 1351mW/1351mW",
                      {"VDD_IN": 4.512, "VDD_CPU_GPU_CV": 0.580, "VDD_SOC": 1.351}, "VDD_IN"),
    "jp7-thor": ("12-03-2026 18:41:07 RAM 8420/125772MB (lfb 20x4MB) SWAP 0/0MB (cached 0MB) "
                 "CPU [1%@2601,0%@2601,0%@2601] EMC_FREQ 0%@3199 GR3D_FREQ @[0%,0%,0%] NVENC off NVDEC off "
                 "cpu@43.8C tj@45.1C VDD_GPU 0mW/0mW/0mW VDD_CPU_SOC_MSS 7120mW/7110mW/7254mW "
                 "VIN_SYS_5V0 4100mW/4098mW/4230mW VIN 31000mW/30980mW/31620mW",
                 {"VDD_GPU": 0.0, "VDD_CPU_SOC_MSS": 7.120, "VIN_SYS_5V0": 4.100, "VIN": 31.0}, "VIN"),
}


@pytest.mark.parametrize("name", TEGRASTATS)
def test_each_tegrastats_format_parses(name):
    line, rails, chosen = TEGRASTATS[name]
    got = parse_line(line)
    assert got == pytest.approx(rails)
    assert total(got, "")[0] == chosen


def test_a_malformed_tegrastats_line_is_one_clear_error():
    with pytest.raises(SensorError, match="^malformed tegrastats line .*'RAM 12/34MB garbage'"):
        parse_line("RAM 12/34MB garbage\n")
    with pytest.raises(SensorError, match=r"no rail VDD_IN \(it has: POM_5V_IN\)"):
        total(parse_line("POM_5V_IN 933/933"), "VDD_IN")


FAKE_TEGRASTATS = '''#!{python}
import sys, time
interval = int(sys.argv[sys.argv.index("--interval") + 1]) / 1000
lines = open("{lines}").read().splitlines()
i = 0
while True:
    print(lines[min(i, len(lines) - 1)], flush=True)
    i += 1
    time.sleep(interval)
'''


def fake_tegrastats(root, text):
    """A tegrastats on PATH that prints ``text``'s lines at its --interval, the last one forever."""
    lines = root.parent / "lines"
    lines.write_text(text)
    fake_tool(root, "tegrastats", FAKE_TEGRASTATS.format(python=sys.executable, lines=lines))


def fake_tool(root, name, body):
    tool = root.parent / "bin" / name
    tool.write_text(body)
    tool.chmod(0o755)


def test_tegrastats_that_prints_nothing_is_an_error_not_a_hang(root, monkeypatch):
    import edgeprune.bench.energy.tegrastats as tegrastats

    monkeypatch.setattr(tegrastats, "LINE_TIMEOUT_S", 0.5)
    fake_tool(root, "tegrastats", "#!/bin/sh\nsleep 30\n")
    t0 = time.monotonic()
    with pytest.raises(UserError, match="--energy tegrastats: tegrastats: tegrastats printed nothing in 0.5 s"):
        open_sensor("tegrastats", *JETSON)
    assert time.monotonic() - t0 < 5


def test_a_sensor_that_fails_at_once_is_skipped_by_auto(root, monkeypatch):
    class NVMLError(Exception):
        pass

    def unsupported(h):
        raise NVMLError("Not Supported")

    fake = types.SimpleNamespace(NVMLError=NVMLError, nvmlInit=lambda: None, nvmlShutdown=lambda: None,
                                 nvmlDeviceGetHandleByIndex=lambda i: i, nvmlDeviceGetName=lambda h: "Tesla P100",
                                 nvmlDeviceGetTotalEnergyConsumption=unsupported)  # fmt: skip
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    RaplTree(root)
    sensor = open_sensor("auto", "none", "none", "", processor="gpu")
    assert sensor.backend == "rapl"  # a pre-Volta GPU has no energy counter: the CPU's is next


def test_rapl_sums_the_packages_not_the_platform_domain(root):
    RaplTree(root)
    psys = root / "sys/class/powercap/intel-rapl:1"
    psys.mkdir()
    for name, value in (("name", "psys"), ("energy_uj", "5"), ("max_energy_range_uj", "1000")):
        write_value(psys / name, value)
    sensor = open_sensor("rapl", "none", "none", "")
    assert sensor.rail == "package-0"


def test_tegrastats_is_found_when_no_sysfs_monitor_is_and_measures_power(root):
    fake_tegrastats(root, "12-03-2026 18:41:07 RAM 2311/7620MB VDD_IN 5000mW/5000mW VDD_SOC 1351mW/1351mW\n")
    sensor = open_sensor("auto", *JETSON)
    try:
        assert sensor.backend == "tegrastats" and sensor.rail == "VDD_IN"
        with Sampler(sensor) as s:
            t0 = time.perf_counter()
            time.sleep(0.5)
            t1 = time.perf_counter()
            assert s.energy(t0, t1) == pytest.approx(5.0 * (t1 - t0), rel=0.01)
    finally:
        sensor.close()


def test_a_malformed_line_from_tegrastats_stops_the_run(root):
    fake_tegrastats(root, "VDD_IN 5000mW/5000mW\nTegrastats: cannot open /sys/...\n")
    sensor = open_sensor("tegrastats", *JETSON)
    try:
        with pytest.raises(SensorError, match="malformed tegrastats line"), Sampler(sensor) as s:
            s.wait_past(time.perf_counter() + 0.5)
        assert sensor.proc is not None and sensor.proc.poll() is None  # runs until its opener closes it
    finally:
        sensor.close()
    assert sensor.proc is None


class FakeJtop:
    """The part of jetson-stats' client the backend uses."""

    def __init__(self, interval):
        self.interval = interval
        self.power = {"rail": {"VDD_IN": {"volt": 5000, "curr": 900, "power": 4500}},
                      "tot": {"name": "VDD_IN", "power": 4500}}  # fmt: skip

    def start(self):
        pass

    def ok(self):
        time.sleep(self.interval)
        return True

    def close(self):
        pass


def test_jtop_is_preferred_where_its_service_runs(root, monkeypatch):
    hwmon_tree(root, {"VDD_IN": 4.0})
    monkeypatch.setitem(sys.modules, "jtop", types.SimpleNamespace(jtop=FakeJtop))
    assert open_sensor("auto", *JETSON).backend == "ina3221-hwmon"  # no service socket
    (root / "run").mkdir()
    (root / "run/jtop.sock").touch()
    sensor = open_sensor("auto", *JETSON)
    assert sensor.backend == "jtop" and sensor.rail == "VDD_IN" and sensor.read() == pytest.approx(4.5)


PMIC = """\
     3V7_WL_SW_A current(0)=0.00390372A
       3V3_SYS_A current(1)=0.05124640A
       1V1_SYS_A current(5)=0.14931340A
      0V8_SW_A current(7)=0.70250010A
     3V7_WL_SW_V volt(8)=3.74068400V
       3V3_SYS_V volt(9)=3.31501600V
       1V1_SYS_V volt(13)=1.11030700V
      0V8_SW_V volt(15)=0.80268570V
       EXT5V_V volt(24)=5.15096000V
        BATT_V volt(25)=0.00000000V
"""


def test_rpi5_pmic_sums_the_rails_with_a_current(root):
    rails = parse_pmic(PMIC)
    assert set(rails) == {"3V7_WL_SW", "3V3_SYS", "1V1_SYS", "0V8_SW"}  # EXT5V has no current
    assert rails["0V8_SW"] == pytest.approx(0.70250010 * 0.80268570)
    out = root.parent / "pmic.txt"
    out.write_text(PMIC)
    fake_tool(root, "vcgencmd", f"#!/bin/sh\ncat {out}\n")
    sensor = open_sensor("auto", "pmic", "vcgencmd pmic_read_adc", "")
    assert sensor.backend == "rpi5-pmic" and sensor.read() == pytest.approx(sum(rails.values()))


def test_nvml_reads_the_total_energy_counter(root, monkeypatch):
    calls = []

    class NVMLError(Exception):
        pass

    fake = types.SimpleNamespace(NVMLError=NVMLError, nvmlInit=lambda: None, nvmlShutdown=lambda: None,
                                 nvmlDeviceGetHandleByIndex=lambda i: i, nvmlDeviceGetName=lambda h: "NVIDIA H200",
                                 nvmlDeviceGetTotalEnergyConsumption=lambda h: calls.append(h) or 1000 * len(calls))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert candidates("none", "none", "gpu") == ["nvml", "rapl"]
    sensor = open_sensor("auto", "none", "none", "", processor="gpu")
    assert sensor.backend == "nvml" and sensor.kind == "energy" and "H200" in sensor.rail
    assert sensor.read() - sensor.read() == pytest.approx(-1.0)  # mJ counter, in joules


def test_integrate_needs_samples_around_the_window():
    import numpy as np

    t, v = np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 1.0])
    assert integrate(t, v, 0.0, 2.0, "power") == pytest.approx(4.0)
    assert integrate(t, v, 0.5, 1.0, "power") == pytest.approx(1.25)
    assert integrate(t, np.array([0.0, 2.0, 5.0]), 0.5, 1.5, "energy") == pytest.approx(2.5)
    with pytest.raises(SensorError, match="do not cover"):
        integrate(t, v, -0.1, 1.0, "power")
