"""coremltools' iOS14 tensor transformation op tests, run against the MIL interpreter (see conftest.py)."""

from tests.coreml_optests._wheel import wheel_names as _wheel_names

globals().update(_wheel_names("iOS14.test_tensor_transformation"))
