"""The collective payload read from optimized HLO text."""

from meta_train.hlo import collective_bytes

HLO = """
  %p = f32[1762]{0} parameter(0)
  %all-reduce = f32[1762]{0} all-reduce(f32[1762]{0} %p), replica_groups={{0,1}}, to_apply=%add
  %ars = (f32[3,4]{1,0}, s32[]) all-reduce-start(f32[3,4]{1,0} %a, s32[] %b), to_apply=%add
  %ag = bf16[8,2]{1,0} all-gather(bf16[4,2]{1,0} %c), dimensions={0}
  %m = pred[5]{0} collective-permute(pred[5]{0} %d), source_target_pairs={{0,1}}
  %x = f32[1000]{0} add(f32[1000]{0} %p, f32[1000]{0} %p)
"""


def test_collective_bytes_sums_result_shapes_per_kind():
    assert collective_bytes(HLO) == {
        "all-reduce": 1762 * 4 + 3 * 4 * 4 + 4,
        "all-gather": 8 * 2 * 2,
        "collective-permute": 5,
    }
    assert collective_bytes("%x = f32[10]{0} add(f32[10]{0} %a, f32[10]{0} %a)") == {}
