"""The symbolic interpreter over TorchScript's serialized code (see torchscript.py).

Values while interpreting: builder ``Value``s (activations), Python scalars, strings, lists
and tuples, NumPy arrays (parameters and constants), ``TSObject`` modules and ``Ref`` names.
Only the statements TorchScript serializes are known: assignment (to names, or unpacking a
tuple), return, ``if`` on a constant, ``for`` over a constant range or list, expression
statements and ``pass``. Anything else is refused with its file and line.
"""

from __future__ import annotations

import ast
import operator

from edgecnn.errors import EdgecnnError, ModelFormatError

from .torchscript import MAX_DEPTH, MAX_STEPS, Code, Ref, TSObject, TSRefusal
from .torchscript_consts import BUILTINS, PRIM, is_act
from .torchscript_ops import ATEN

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Div: operator.truediv}
_CMPOPS = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
           ast.Gt: operator.gt, ast.GtE: operator.ge}
SCALARS = (int, float, bool, str, type(None))
TYPE_FIRST = ("annotate", "unchecked_cast", "uninitialized", "isinstance")  # a type, unevaluated


class _Return(Exception):
    def __init__(self, value):
        self.value = value


class Interpreter:
    def __init__(self, code: Code, constants: tuple, builder, source: str):
        self.code, self.constants, self.b, self.source = code, constants, builder, source
        self.steps = 0
        self.stack = []  # (FunctionDef, module path) of the calls in progress
        self.node = None  # the AST node being interpreted, for error messages

    # ---- errors ---------------------------------------------------------------------------
    def where(self) -> str:
        if not self.stack or self.node is None:
            return "forward"
        fn = self.stack[-1][0]
        file, lines = self.code.files.get(id(fn), ("code", []))
        line = getattr(self.node, "lineno", 0)
        text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        return f"{file} line {line} ({text[:80]})"

    def refuse(self, what: str):
        raise TSRefusal(f"{self.where()}: {what}")

    @property
    def path(self) -> str:
        return self.stack[-1][1] if self.stack else ""

    def name(self, op: str) -> str:
        """A node name: the module's path inside a leaf module (``layer1.0.conv1``), the path
        and the op for functional calls in a container's forward (``layer1.0.add``)."""
        if self.stack and self.stack[-1][2] and self.path:
            return self.path
        return f"{self.path}.{op}" if self.path else op

    # ---- entry ----------------------------------------------------------------------------
    def run_forward(self, root: TSObject) -> list:
        fn = self.code.classes.get(root.qualname, {}).get("forward")
        if fn is None:
            raise ModelFormatError(f"{self.source}: the code/ folder has no forward() for "
                                   f"{root.qualname}")
        params = [a.arg for a in fn.args.args]
        if len(params) != 2:
            raise TSRefusal(f"{self.source}: forward() takes {len(params) - 1} inputs; edgecnn "
                            "converts models with one image input")
        try:
            out = self.call_function(fn, [root, self.b.input_value()], {}, root.path, False)
        except RecursionError:
            raise ModelFormatError(f"{self.source}: its code nests too deeply") from None
        outs = list(out) if isinstance(out, tuple) else [out]
        if not outs or not all(is_act(v) for v in outs):
            raise TSRefusal(f"{self.source}: forward() returns {type(out).__name__}; edgecnn "
                            "converts models that return tensors computed from the input")
        return outs

    # ---- calls ----------------------------------------------------------------------------
    def call_function(self, fn: ast.FunctionDef, args, kwargs, path, leaf=None):
        if len(self.stack) >= MAX_DEPTH:
            self.refuse(f"calls nest more than {MAX_DEPTH} deep")
        a = fn.args
        if a.vararg or a.kwarg or a.kwonlyargs:
            self.refuse("*args/**kwargs parameters are not TorchScript")
        names = [p.arg for p in a.args]
        if len(args) > len(names):
            self.refuse(f"{fn.name}() takes {len(names)} arguments, {len(args)} given")
        env = dict(zip(names, args))
        defaults = dict(zip(names[len(names) - len(a.defaults):], a.defaults))
        if leaf is None:
            leaf = self.stack[-1][2] if self.stack else False
        self.stack.append((fn, path, leaf))
        try:
            for key, value in kwargs.items():
                if key not in names or key in env:
                    self.refuse(f"{fn.name}() got an unexpected argument {key!r}")
                env[key] = value
            for key in names:
                if key not in env:
                    if key not in defaults:
                        self.refuse(f"{fn.name}() is missing argument {key!r}")
                    env[key] = self.eval(defaults[key], env)
            try:
                self.exec_block(fn.body, env)
            except _Return as r:
                return r.value
            return None
        finally:
            self.stack.pop()

    def call(self, func, args, kwargs):
        if isinstance(func, Ref):
            if func.obj is not None:  # a bound method of a module
                obj = func.obj
                fn = self.code.classes.get(obj.qualname, {}).get(func.name)
                if fn is None:
                    self.refuse(f"{obj.qualname} has no method {func.name}() in code/")
                leaf = not any(isinstance(v, TSObject) for v in obj.attrs.values())
                return self.call_function(fn, [obj] + list(args), kwargs, obj.path, leaf)
            if func.name in self.code.functions:
                return self.call_function(self.code.functions[func.name], args, kwargs, self.path)
            for table, prefix in ((ATEN, "torch."), (ATEN, "ops.aten."), (PRIM, "ops.prim.")):
                if func.name.startswith(prefix) and func.name[len(prefix):] in table:
                    return self.op(table[func.name[len(prefix):]], func.name, args, kwargs)
            if func.name in BUILTINS:
                return self.op(BUILTINS[func.name], func.name, args, kwargs)
            self.refuse(f"{func.name} is not supported by edgecnn's TorchScript reader")
        self.refuse(f"calls a {type(func).__name__}, which is not a function")

    def op(self, handler, name, args, kwargs):
        try:
            return handler(self, *args, **kwargs)
        except TypeError as e:
            self.refuse(f"{name} called with arguments edgecnn does not know ({e})")
        except EdgecnnError as e:
            if isinstance(e, TSRefusal) or str(e).startswith(self.source):
                raise
            raise type(e)(f"{self.where()}: {e}") from None

    # ---- statements -----------------------------------------------------------------------
    def step(self, node):
        self.node = node
        self.steps += 1
        if self.steps > MAX_STEPS:
            self.refuse(f"runs more than {MAX_STEPS} statements")

    def exec_block(self, body, env):
        for stmt in body:
            self.exec_stmt(stmt, env)

    def exec_stmt(self, s, env):
        self.step(s)
        if isinstance(s, ast.Assign):
            value = self.eval(s.value, env)
            self.node = s
            for target in s.targets:
                self.assign(target, value, env)
        elif isinstance(s, ast.AnnAssign) and s.value is not None:
            self.assign(s.target, self.eval(s.value, env), env)
        elif isinstance(s, ast.Return):
            raise _Return(None if s.value is None else self.eval(s.value, env))
        elif isinstance(s, ast.Expr):
            self.eval(s.value, env)
        elif isinstance(s, ast.If):
            cond = self.condition(s.test, env)
            self.node = s
            self.exec_block(s.body if cond else s.orelse, env)
        elif isinstance(s, ast.For):
            items = self.eval(s.iter, env)
            if not isinstance(items, (range, list, tuple)) or s.orelse:
                self.refuse("a loop over something other than a constant range or list")
            for item in list(items):
                self.assign(s.target, item, env)
                self.exec_block(s.body, env)
        elif isinstance(s, ast.Assert):
            if not self.condition(s.test, env):
                self.refuse("an assert in the model fails for this input")
        elif not isinstance(s, ast.Pass):
            self.refuse(f"a {type(s).__name__} statement is not supported")

    def assign(self, target, value, env):
        if isinstance(target, ast.Name):
            env[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            if not isinstance(value, (tuple, list)) or len(value) != len(target.elts):
                self.refuse("unpacks a value that is not a tuple of that length")
            for t, v in zip(target.elts, value):
                self.assign(t, v, env)
        else:
            self.refuse(f"assignment to a {type(target).__name__} is not supported")

    def condition(self, node, env) -> bool:
        value = self.eval(node, env)
        if not isinstance(value, SCALARS):
            self.node = node
            self.refuse("control flow that depends on a tensor's values (data-dependent); "
                        "edgecnn converts graphs whose branches constants decide")
        return bool(value)

    # ---- expressions ----------------------------------------------------------------------
    def eval(self, node, env):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id in ("torch", "ops", "__torch__", "CONSTANTS") or node.id in BUILTINS:
                return Ref(node.id)
            self.node = node
            self.refuse(f"reads {node.id!r} before it is assigned")
        if isinstance(node, ast.Attribute):
            return self.attribute(self.eval(node.value, env), node.attr, node)
        if isinstance(node, ast.Call):
            func = self.eval(node.func, env)
            args = [None if i == 0 and isinstance(node.func, ast.Name) and node.func.id in
                    TYPE_FIRST else self.eval(a, env) for i, a in enumerate(node.args)]
            if any(isinstance(a, ast.Starred) for a in node.args):
                self.refuse("*args in a call")
            kwargs = {}
            for k in node.keywords:
                if k.arg is None:
                    self.refuse("**kwargs in a call")
                kwargs[k.arg] = self.eval(k.value, env)
            self.node = node
            self.steps += 1
            return self.call(func, args, kwargs)
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.eval(e, env) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Subscript):
            return self.subscript(self.eval(node.value, env), self.eval(node.slice, env), node)
        if isinstance(node, ast.UnaryOp):
            v = self.eval(node.operand, env)
            self.scalar(v, node)
            if isinstance(node.op, ast.Not):
                return not v
            if isinstance(node.op, ast.USub) and isinstance(v, (int, float)):
                return -v
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            a, b = self.eval(node.left, env), self.eval(node.right, env)
            self.scalar(a, node), self.scalar(b, node)
            return self.arith(_BINOPS[type(node.op)], a, b, node)
        if isinstance(node, ast.BoolOp):
            values = [self.condition(v, env) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            a, b = self.eval(node.left, env), self.eval(node.comparators[0], env)
            op = node.ops[0]
            if isinstance(op, (ast.Is, ast.IsNot)):
                same = a is b if a is None or b is None else a == b
                return same if isinstance(op, ast.Is) else not same
            if type(op) in _CMPOPS:
                self.scalar(a, node), self.scalar(b, node)
                return self.arith(_CMPOPS[type(op)], a, b, node)
        if isinstance(node, ast.IfExp):
            return self.eval(node.body if self.condition(node.test, env) else node.orelse, env)
        self.node = node
        self.refuse(f"the expression {type(node).__name__} is not supported")

    def scalar(self, v, node):
        if not isinstance(v, SCALARS):
            self.node = node
            self.refuse(f"arithmetic on a {type(v).__name__}; edgecnn folds arithmetic on "
                        "constants only")

    def arith(self, fn, a, b, node):
        try:
            out = fn(a, b)
        except (TypeError, ZeroDivisionError, OverflowError, ValueError) as e:
            self.node = node
            self.refuse(f"constant arithmetic fails ({type(e).__name__})")
        if isinstance(out, int) and not isinstance(out, bool) and abs(out) > 1 << 62:
            self.node = node
            self.refuse("constant arithmetic overflows int64")
        return out

    def subscript(self, value, index, node):
        if isinstance(value, (list, tuple)) and isinstance(index, int) and \
                not isinstance(index, bool) and -len(value) <= index < len(value):
            return value[index]
        if isinstance(value, dict) and isinstance(index, (str, int)) and index in value:
            return value[index]
        self.node = node
        self.refuse(f"indexing a {type(value).__name__} with {type(index).__name__}")

    def attribute(self, base, attr, node):
        if isinstance(base, Ref) and base.obj is None:
            if base.name == "CONSTANTS":
                if attr.startswith("c") and attr[1:].isdigit() and \
                        int(attr[1:]) < len(self.constants):
                    return self.constants[int(attr[1:])]
                self.node = node
                self.refuse(f"CONSTANTS.{attr} is not in constants.pkl")
            return Ref(f"{base.name}.{attr}")
        if isinstance(base, TSObject):
            if attr == "training":
                return False  # eval mode: running statistics, no dropout
            if attr in base.attrs:
                return base.attrs[attr]
            consts = self.code.constants.get(base.qualname, {})
            if attr in consts:
                return consts[attr]
            if attr in self.code.classes.get(base.qualname, {}):
                return Ref(attr, base)
            self.node = node
            self.refuse(f"{base.qualname.rsplit('.', 1)[-1]} has no attribute {attr!r}")
        self.node = node
        self.refuse(f"reads .{attr} of a {type(base).__name__}")
