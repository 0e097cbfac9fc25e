"""ExecuTorch + XNNPACK: one tower -> one `.pte` (fp32, int8 static, int8 dynamic or 4-bit weights), a runner on
`executorch.runtime`, and a delegation report (delegated vs portable nodes, ops left out).

Precisions: `fp32`; `int8` (static PT2E, per-channel int8 weights, activation scales calibrated on
calibration_data/; Linear and Conv2d layers run in int8, the ops between them in fp32 inside the
same delegate); `int8_dynamic` (the default: Linear only, per-channel int8 weights, activation
scales at run time; the image tower's conv stem stays fp32); `int4w` (Linear only, 4-bit weights in
groups of 32 input channels with one scale each, int8 activations quantized per call: about half the
bytes of int8_dynamic).
`converters/rewrites.py` (`for_xnnpack`) and `xnnpack_pass` (on the edge ops) move LayerNorm,
the L2-norm sum, q / k / v (one Linear), class-token expands and readouts, squeezes and the
attention mask's row minimum into the delegate: each tower lowers into one XNNPACK island, and
only token-embedding lookups stay on portable kernels.

ExecuTorch, torchao and the XNNPACK partitioner are imported inside the functions that use them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mobile_sdk.errors import ConversionError, DataError

from .base import Artifact, TensorSpec, atomic_output, describe

log = logging.getLogger(__name__)

PLATFORM = "executorch"
PRECISIONS = ("fp32", "int8", "int8_dynamic", "int4w")
# int4w: 4-bit weights in groups of this many input channels (one fp32 scale per group), with int8
# activations quantized per call: XNNPACK's qd8-f32-qb4w kernels. Linear layers whose input width
# does not divide by it stay int8-free fp32.
INT4_GROUP = 32
# The default is the most accurate int8 variant that passes parity. On the shipped student
# (make demo, 100 test samples per task) both pass; int8_dynamic is the more accurate: cosine
# 0.99999 / 0.99998 (image / text) vs static 0.99994 / 0.99975, zero-shot agreement 99.6% both,
# latency 0.34 vs 0.36 ms (image, 2 threads).
DEFAULT_PRECISION = "int8_dynamic"


@dataclass(frozen=True)
class ExecuTorchConfig:
    precision: str = DEFAULT_PRECISION  # fp32 | int8 (static, PT2E, per-channel weights) | int8_dynamic | int4w
    rewrite: bool = True  # rewrites.for_xnnpack + xnnpack_pass (one XNNPACK island)
    # Also write debug/{tower}_{precision}.pte: the same program with each layer's output tapped as
    # an extra output, made from the same (quantized) module, for the parity checker's localization.
    debug_twin: bool = True

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ConversionError(f"unknown ExecuTorch precision {self.precision!r}; choose one of {PRECISIONS}")


CONFIG = ExecuTorchConfig


def tower_module(model, tower: str) -> torch.nn.Module:
    """One tower of a model (a DualEncoder adapter, or a built-in CLIP), in eval mode."""
    from mobile_sdk.models.adapter import as_adapter

    if tower not in ("image", "text"):
        raise ConversionError(f"unknown tower {tower!r}; choose 'image' or 'text'")
    return as_adapter(model).tower(tower).eval()


def _input_spec(tower: str, example: torch.Tensor) -> TensorSpec:
    if tower == "image":
        return TensorSpec("pixels", tuple(example.shape), "float32", "NCHW")
    return TensorSpec("ids", tuple(example.shape), "int32", "NT")


def _quantize(module: torch.nn.Module, example: torch.Tensor, calibration: list[torch.Tensor] | None,
              dynamic: bool) -> torch.nn.Module:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    if not dynamic and not calibration:  # before any export: fail fast
        raise DataError("static int8 needs calibration inputs (calibration_data/); got none")
    qconfig = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)
    # Only the inputs, weights and outputs of Linear and Conv2d layers are quantized; everything
    # between them (residual adds, LayerNorm, softmax, GELU, the L2-norm tail) stays fp32 inside
    # the same XNNPACK delegate. Quantizing the residual adds too (`set_global`) put the image
    # tower's residual stream, whose range is dominated by a few large channels, on one per-tensor
    # scale: cosine 0.986 mean / 0.937 min against 0.997 / 0.990 this way (64 test images).
    # Dynamic quantization covers Linears and 1x1 convs (XNNPACK's QD8 GEMM and 1x1 convolution);
    # other convs stay fp32 (the quantizer skips depthwise ones).
    graph = torch.export.export(module, (example,)).module()
    constant = _constant_input_linears(graph)
    quantizer = XNNPACKQuantizer()
    if dynamic:
        # Linears and 1x1 convs, chosen by a node filter: a module-name config does not reach convs
        # (the quantizer checks the filter on the conv's weight node too, which has no module path).
        chosen = {name for name, m in module.named_modules()
                  if (isinstance(m, torch.nn.Linear) and name not in constant) or _pointwise(m)}
        quantizer = quantizer.set_global(qconfig).set_filter_function(
            lambda n: n.op != "call_function" or _module_path(n) in chosen)
    else:
        for name, m in module.named_modules():
            if isinstance(m, torch.nn.Linear) and name not in constant:
                quantizer = quantizer.set_module_name(name, qconfig)
        quantizer = quantizer.set_module_type(torch.nn.Conv2d, qconfig)
    prepared = prepare_pt2e(graph, quantizer)
    # Static: activation ranges come from the calibration data. Dynamic: activations are quantized
    # at run time, but the weight observers still need one pass to see the weights.
    for x in (calibration if not dynamic else [example]):
        prepared(x)
    return convert_pt2e(prepared)


def _module_path(node) -> str | None:
    """The dotted path of the innermost module an exported graph node was traced in."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None
    path = list(stack.values())[-1][0]
    return path[len("L['self']."):] if path.startswith("L['self'].") else path


def _pointwise(m: torch.nn.Module) -> bool:
    """A 1x1, stride-1, ungrouped Conv2d: a Linear over channels that XNNPACK runs as a GEMM in its
    own NHWC layout (as a Linear it needs two transposes around it)."""
    return (type(m) is torch.nn.Conv2d and tuple(m.kernel_size) == (1, 1) and tuple(m.stride) == (1, 1)
            and m.groups == 1)


def _constant_input_linears(graph: torch.fx.GraphModule) -> set[str]:
    """The Linear layers of an exported tower whose input does not depend on the tower's input
    (SigLIP's attention-pooling query, made from a learned probe): they compute a constant, and
    XNNPACK does not take an int8-dynamic Linear on a constant (its quantize ops would be left
    on portable kernels that the runtime lacks), so they stay fp32."""
    live: set = set()
    out = set()
    for node in graph.graph.nodes:
        if node.op == "placeholder" or any(a in live for a in node.all_input_nodes):
            live.add(node)
        if node.op == "call_function" and node.target is torch.ops.aten.linear.default and node.args[0] not in live:
            stack = node.meta.get("nn_module_stack") or {}
            if stack:
                out.add(list(stack.values())[-1][0])
    return out


def _quantize_int4w(module: torch.nn.Module, example: torch.Tensor) -> torch.nn.Module:
    """4-bit grouped weights with int8 dynamic activations on every Linear whose input width divides
    by INT4_GROUP and whose input is not a constant (torchao's Int8DynamicActivationIntxWeightConfig, as
    XNNPACK takes it); on a copy."""
    import copy

    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, quantize_
    from torchao.quantization.granularity import PerGroup

    module = copy.deepcopy(module)
    constant = _constant_input_linears(torch.export.export(module, (example,)).module())
    eligible = {n for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)
                and m.in_features % INT4_GROUP == 0 and n not in constant}
    if not eligible:
        raise ConversionError(f"int4w: no Linear layer of this tower has an input width divisible by {INT4_GROUP}; "
                              f"use int8_dynamic")
    quantize_(module, Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4,
                                                            weight_granularity=PerGroup(INT4_GROUP)),
              filter_fn=lambda m, fqn: fqn in eligible)
    return module


def _patch_linear(precision: str) -> bool:
    """Whether the patch conv is lowered as a Linear (rewrites.PatchLinear). Not for static int8:
    there the conv's int8 kernel keeps the shipped student's image cosine at 0.99993, against
    0.99941 as a Linear (both at 98% zero-shot agreement, under the int8 bar)."""
    return precision != "int8"


def _pointwise_linear(precision: str) -> bool:
    """Whether 1x1 stride-1 convs are lowered as Linears (rewrites.PatchLinear): only for int4w,
    whose recipe quantizes Linear layers only."""
    return precision == "int4w"


def _prepare(module: torch.nn.Module, example: torch.Tensor, calibration, precision: str) -> torch.nn.Module:
    """The tower module as the precision's recipe quantizes it (fp32: unchanged)."""
    if precision == "fp32":
        return module
    if precision == "int4w":
        return _quantize_int4w(module, example)
    return _quantize(module, example, calibration, dynamic=precision == "int8_dynamic")


def delegation_report(graph_module) -> dict:
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    df = info.get_operator_delegation_dataframe()
    rows = [r for r in df.to_dict("records") if r["op_type"] not in ("Total", "getitem")]
    delegated = sum(int(r["occurrences_in_delegated_graphs"]) for r in rows)
    portable = sum(int(r["occurrences_in_non_delegated_graphs"]) for r in rows)
    return {
        "delegated_subgraphs": int(info.num_delegated_subgraphs),
        "delegated_nodes": delegated,
        "portable_nodes": portable,
        "delegated_fraction": delegated / max(1, delegated + portable),
        "portable_ops": {r["op_type"]: int(r["occurrences_in_non_delegated_graphs"])
                         for r in rows if r["occurrences_in_non_delegated_graphs"]},
    }


def convert(model, tower: str, example: torch.Tensor, config: ExecuTorchConfig, out_dir: Path,
            calibration: list[torch.Tensor] | None = None) -> Artifact:
    """Lower one tower to `OUT/{tower}_{precision}.pte` (+ `.json` metadata), atomically."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    module = tower_module(model, tower)
    if config.rewrite:
        from .rewrites import for_xnnpack

        module = for_xnnpack(module, patch_linear=_patch_linear(config.precision),
                             pointwise_linear=_pointwise_linear(config.precision))
    # A non-contiguous example (say, a permuted NHWC batch) would be exported with its strides as
    # the program's dim order, and contiguous NCHW inputs would then be read wrongly.
    example = example.contiguous()
    calibration = [x.contiguous() for x in calibration] if calibration else calibration
    with torch.no_grad():
        reference = module(example)
    try:
        module = _prepare(module, example, calibration, config.precision)
        ep = torch.export.export(module, (example,))
        edge = to_edge_transform_and_lower(ep, transform_passes=[xnnpack_pass()] if config.rewrite else None,
                                           partitioner=[XnnpackPartitioner()])
        report = delegation_report(edge.exported_program().graph_module)  # before to_executorch()
        program = edge.to_executorch()
        twin = _tapped_program(module, example, _layer_paths(model, tower), config.rewrite) if config.debug_twin \
            else None
    except (DataError, ConversionError):
        raise
    except Exception as e:  # export / lowering failures name the step
        raise ConversionError(f"ExecuTorch {config.precision} lowering of the {tower} tower failed: "
                              f"{type(e).__name__}: {e}") from e
    out_dir = Path(out_dir)
    path = out_dir / f"{tower}_{config.precision}.pte"
    artifact = Artifact(PLATFORM, tower, config.precision, path, [_input_spec(tower, example)],
                        [TensorSpec("embedding", tuple(reference.shape), "float32", "NC")], {"delegation": report})
    artifact.extra["bytes"] = len(program.buffer)
    artifact.extra["description"] = describe(model, tower, config.precision, tuple(example.shape))
    if twin is not None:
        twin_path = out_dir / "debug" / path.name
        artifact.extra["debug_twin"] = {"file": f"debug/{path.name}", "outputs": twin[1]}
        with atomic_output(twin_path) as tmp:
            tmp.write_bytes(twin[0])
    with atomic_output(path) as tmp:  # each file appears whole or not at all
        tmp.write_bytes(program.buffer)
    with atomic_output(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(artifact.to_dict(), indent=2) + "\n")
    return artifact


def xnnpack_pass():
    """An edge-dialect pass (run by `to_edge_transform_and_lower` after decomposition, before
    partitioning) that rewrites the ops XNNPACK would leave on portable kernels into ops it takes,
    each computing the same values at the program's static shapes. Every op left outside the
    delegate splits it: open_clip's ViT had 4 XNNPACK islands, its text tower 15 (12 of them from
    the attention mask's `amin`), MobileCLIP's FastViT 8.
    - `expand_copy` / `repeat` that add no values (a class token, SigLIP's pooling probe, a 4-D
      matmul's operand made a batch of 1) -> dropped, or a view;
    - `select_copy(x, d, i)` (a class-token readout `x[:, 0]`) -> `slice_copy(x, d, i, i + 1)` + view;
    - `squeeze_copy` / `unsqueeze_copy` / `as_strided_copy` of a contiguous input to a contiguous
      layout -> view;
    - `amin(x, -1)` over the last dim -> `-max(-x)` on a 4-D view (XNNPACK's max takes 4-D)."""
    from executorch.exir.dialects._ops import ops as exir_ops
    from executorch.exir.pass_base import ExportPass

    e = exir_ops.edge.aten

    class _XnnpackFriendly(ExportPass):
        def call_operator(self, op, args, kwargs, meta):
            out = meta["val"] if "val" in meta.data else None
            src = args[0] if args else None
            inp = src.to_tensor() if hasattr(src, "to_tensor") else None
            if not isinstance(out, torch.Tensor) or not isinstance(inp, torch.Tensor):
                return super().call_operator(op, args, kwargs, meta)
            shape = list(out.shape)
            view = lambda x, sh: super(_XnnpackFriendly, self).call_operator(  # noqa: E731
                e.view_copy.default, (x, list(sh)), {}, meta)
            if op in (e.expand_copy.default, e.repeat.default) and inp.numel() == out.numel():
                return src if list(inp.shape) == shape else view(src, shape)
            if op == e.select_copy.int:
                dim, index = args[1], args[2] % inp.shape[args[1]]
                part = super().call_operator(e.slice_copy.Tensor, (src, dim, index, index + 1, 1), {}, meta)
                return view(part, shape)
            if op in (e.squeeze_copy.dims, e.squeeze_copy.dim, e.squeeze_copy.default, e.unsqueeze_copy.default) \
                    or (op == e.as_strided_copy.default and inp.is_contiguous() and out.is_contiguous()
                        and inp.numel() == out.numel() and inp.storage_offset() == 0
                        and (len(args) < 4 or not args[3])):
                return view(src, shape)
            if op == e.amin.default:
                dims = args[1] if len(args) > 1 else kwargs.get("dim", [])
                dims = [d % inp.dim() for d in (dims if isinstance(dims, (list, tuple)) else [dims])]
                if dims == [inp.dim() - 1] and 1 <= inp.dim() <= 4:
                    x4 = view(src, [1] * (4 - inp.dim()) + list(inp.shape))
                    neg = super().call_operator(e.neg.default, (x4,), {}, meta)
                    top = super().call_operator(e.max.dim, (neg, 3, True), {}, meta)
                    low = super().call_operator(e.neg.default, (self.call_getitem(top, 0, meta),), {}, meta)
                    return view(low, shape)
            return super().call_operator(op, args, kwargs, meta)

    return _XnnpackFriendly()


def _layer_paths(model, tower: str) -> dict[str, str]:
    from mobile_sdk.parity.localize import layer_points

    return layer_points(tower_module(model, tower))


def _tapped_program(module: torch.nn.Module, example: torch.Tensor, paths: dict[str, str],
                    rewrite: bool = True) -> tuple[bytes, dict[str, int]]:
    """Lower `module` (float or quantized) with the devtools intermediate-output tap on the last
    float op of each layer in `paths` (taps on quantized q/dq values break the lowering); those
    values become extra program outputs without splitting the XNNPACK delegate.
    -> (program bytes, {layer: output index}); output 0 is the embedding."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools.intermediate_output_tap import FULL_TENSOR, strip_taps_, tap_intermediate_outputs_
    from executorch.exir import to_edge_transform_and_lower

    from mobile_sdk.parity.localize import in_module_stack

    ep = torch.export.export(module, (example,))
    last: dict[str, str] = {}
    for node in ep.graph.nodes:
        target = str(node.target)
        if node.op != "call_function" or "quantize" in target or "getitem" in target:
            continue
        for p in in_module_stack(node, paths):
            last[p] = node.name
    wanted = set(last.values())
    ep, specs = tap_intermediate_outputs_(ep, rules=[(lambda n: n.name in wanted, FULL_TENSOR)])
    edge = to_edge_transform_and_lower(ep, transform_passes=[xnnpack_pass()] if rewrite else None,
                                       partitioner=[XnnpackPartitioner()])
    strip_taps_(edge)
    by_node = {s.node_name: s.output_index for s in specs}
    return edge.to_executorch().buffer, {p: by_node[n] for p, n in last.items()}


def _run_tapped(buffer: bytes, outputs: dict[str, int], inputs: torch.Tensor) -> dict[str, np.ndarray]:
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(buffer).load_method("forward")
    got: dict[str, list[np.ndarray]] = {p: [] for p in outputs}
    got["embedding"] = []
    for i in range(len(inputs)):
        res = method.execute([inputs[i:i + 1].contiguous()])
        got["embedding"].append(res[0].numpy().copy())
        for p, idx in outputs.items():
            got[p].append(res[idx].numpy().copy())
    return {p: np.concatenate(v) for p, v in got.items()}


def intermediates(model, tower: str, precision: str, inputs: torch.Tensor, calibration: list[torch.Tensor] | None,
                  artifact_path: str | Path | None = None) -> dict[str, np.ndarray]:
    """Each layer's output (`mobile_sdk.parity.localize.layer_paths` + `embedding`) as the
    ExecuTorch runtime computes it, for the parity checker's divergence localization.

    From the artifact's debug twin (`debug/{name}.pte`, written by `convert` from the same module
    as the artifact) when there is one; otherwise the tower is lowered again from `model` with the
    artifact's recipe (same rewrites, quantization and calibration). Either way the tapped program's
    embedding is compared with the artifact's on the same inputs (`replica_max_abs_diff`), so a
    twin or rebuild that does not reproduce the artifact is reported, not trusted.
    """
    from .rewrites import for_xnnpack

    twin = None
    if artifact_path is not None:
        meta_path = Path(artifact_path).with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        info = meta.get("extra", {}).get("debug_twin")
        if info and (Path(artifact_path).parent / info["file"]).is_file():
            twin = ((Path(artifact_path).parent / info["file"]).read_bytes(), info["outputs"])
    if twin is None:
        module = for_xnnpack(tower_module(model, tower), patch_linear=_patch_linear(precision),
                             pointwise_linear=_pointwise_linear(precision))
        example = inputs[:1].contiguous()
        module = _prepare(module, example, calibration, precision)
        twin = _tapped_program(module, example, _layer_paths(model, tower))
    result = _run_tapped(twin[0], twin[1], inputs)
    if artifact_path is not None:
        runner = PteRunner(artifact_path)
        art = np.concatenate([runner(inputs[i:i + 1].numpy()) for i in range(len(inputs))])
        result["replica_max_abs_diff"] = np.asarray(float(np.max(np.abs(art - result["embedding"]))))
    return result


class PteRunner:
    """Runs a `.pte` on the ExecuTorch runtime: numpy in (the artifact's input shape and dtype),
    numpy embeddings out."""

    def __init__(self, path: str | Path, input_spec: TensorSpec | None = None):
        from executorch.runtime import Runtime

        path = Path(path)
        if not path.is_file():
            raise ConversionError(f"ExecuTorch program not found: {path}")
        meta = path.with_suffix(".json")
        if input_spec is None and meta.is_file():
            spec = json.loads(meta.read_text())["inputs"][0]
            input_spec = TensorSpec(spec["name"], tuple(spec["shape"]), spec["dtype"], spec["layout"])
        self.spec = input_spec
        try:
            # Keep the bytes alive as long as the program: the runtime does not own its buffer.
            self._buffer = path.read_bytes()
            self._program = Runtime.get().load_program(self._buffer)
            self.method = self._program.load_method("forward")
        except Exception as e:
            raise ConversionError(f"cannot load {path} as an ExecuTorch program ({type(e).__name__}: {e}); "
                                  f"is it a .pte written by this exporter and intact?") from e

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        if self.spec is not None:
            if tuple(inputs.shape) != tuple(self.spec.shape):
                raise DataError(f"input {self.spec.name}: expected shape {tuple(self.spec.shape)}, got {tuple(inputs.shape)}")
            if inputs.dtype != np.dtype(self.spec.dtype):
                raise DataError(f"input {self.spec.name}: expected dtype {self.spec.dtype}, got {inputs.dtype}")
        out = self.method.execute([torch.from_numpy(np.ascontiguousarray(inputs))])[0]
        return out.numpy().copy()  # the runtime reuses its output buffer on the next call


def load(path: str | Path) -> PteRunner:
    return PteRunner(path)
