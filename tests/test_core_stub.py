"""``_core.pyi`` describes the compiled module: the same names, and the same parameters (from the
compiled functions' text signatures) for every function, class constructor and method."""

import ast
import inspect
from pathlib import Path

import ntkfast
from ntkfast import _core

STUB = Path(ntkfast.__file__).with_name("_core.pyi")


def _stub():
    tree = ast.parse(STUB.read_text())
    functions, classes = {}, {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = node
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = {n.name: n for n in node.body if isinstance(n, ast.FunctionDef)}
    return functions, classes


def _stub_params(node: ast.FunctionDef) -> list:
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args]
    return [n for n in names if n != "self"]


def _compiled_params(obj) -> list:
    text = obj.__text_signature__.replace("$self, ", "").replace("$self", "").replace("$type, ", "")
    return [p for p in inspect.signature(eval(f"lambda {text[1:-1]}: None")).parameters]


def test_every_compiled_name_is_in_the_stub_and_back():
    functions, classes = _stub()
    compiled = {n for n in dir(_core) if not n.startswith("__")}
    assert compiled == set(functions) | set(classes), compiled ^ (set(functions) | set(classes))


def test_functions_and_methods_take_the_stub_parameters():
    functions, classes = _stub()
    for name, node in functions.items():
        assert _compiled_params(getattr(_core, name)) == _stub_params(node), name
    for cls, methods in classes.items():
        compiled_cls = getattr(_core, cls)
        compiled = {n for n, v in vars(compiled_cls).items() if not n.startswith("__")}
        stub = {n for n in methods if not n.startswith("__")}
        assert compiled == stub, (cls, compiled ^ stub)
        for name, node in methods.items():
            if name == "__init__":
                if compiled_cls.__text_signature__ is not None:  # (classes without a constructor have none)
                    assert _compiled_params(compiled_cls) == _stub_params(node), cls
                continue
            member = vars(compiled_cls)[name]
            if isinstance(member, type(_core.Network.in_dim)):  # a property
                continue
            assert _compiled_params(member) == _stub_params(node), f"{cls}.{name}"
