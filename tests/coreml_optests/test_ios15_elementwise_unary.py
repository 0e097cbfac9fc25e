"""coremltools' iOS15 elementwise unary op tests, run against the MIL interpreter (see conftest.py)."""

from tests.coreml_optests._wheel import wheel_names as _wheel_names

globals().update(_wheel_names("iOS15.test_elementwise_unary"))
