"""The SLO file (``slo.yaml``): parsing with Keptn's defaults, and criteria strings (spec §4.2, §4.4).

:func:`parse_slo` reads the YAML (:mod:`keptn.yaml_loader`: YAML 1.2 like Keptn's yaml.v3,
duplicate keys rejected) and decodes it the way yaml.v3 decoded it into go-utils'
``ServiceLevelObjectives``: unknown keys are ignored, ``null`` means "not set", any scalar may
stand where a string is expected (``pass: 90`` is ``"90"``), and then lighthouse's ``parseSLO``
defaults apply (no ``comparison`` block → single_result/all/1/avg; inside a block an empty
``include_result_with_score`` → ``all``, ``number_of_comparison_results`` 0 → 3, empty
``aggregate_function`` → ``avg``; ``null`` objectives dropped; weight 0 → 1).

Criteria strings are *not* checked here, as in Keptn: a bad one fails the evaluation at run time
(see :mod:`keptn.lighthouse`). :func:`slo_problems` lists them for linting.

Deliberate differences from yaml.v3, all of which made Keptn crash or guess:

* a ``null`` entry in a ``pass``/``warning`` list is rejected (lighthouse dereferenced it);
* a weight or ``number_of_comparison_results`` must be a whole number (yaml.v3 truncated 2.7).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field

from keptn._fields import describe, scalar_text
from keptn.errors import InvalidInputError
from keptn.lighthouse_numbers import parse_go_float
from keptn.yaml_loader import load_yaml

__all__ = [
    "SLO",
    "Comparison",
    "CriteriaSet",
    "Criterion",
    "InvalidCriterionError",
    "InvalidSLOError",
    "Objective",
    "Operator",
    "TotalScore",
    "parse_criterion",
    "parse_slo",
    "slo_problems",
]

Operator = Literal["<", "<=", "=", ">=", ">"]
_OPERATORS: tuple[Operator, ...] = ("<=", "<", "=", ">=", ">")  # Keptn's order: longest prefix first
_OPERATOR_CHARACTERS = "<|=>"  # the character class of Keptn's regex ``^([<|<=|=|>|>=]{1,2})``
_INVALID_CRITERIA = "invalid criteria string"
_INVALID_TARGET = "could not parse criteria target value"
_GO_INT_LIMIT = 1 << 63


class InvalidSLOError(InvalidInputError):
    """An SLO file could not be read (invalid YAML or a value of the wrong type).

    Attributes:
        detail: what is wrong, without Keptn's "Could not parse SLO file for ..." prefix.
    """

    def __init__(self, message: str, *, field: str | None = None, detail: str = "") -> None:
        super().__init__(message, field=field)
        self.detail = detail or message


class InvalidCriterionError(InvalidInputError):
    """A criteria string is not one lighthouse understands.

    Attributes:
        raw: the criteria string as written in the SLO.
        reason: lighthouse's error text, ``invalid criteria string`` (no operator) or
            ``could not parse criteria target value`` (operator, but no number after it).
    """

    def __init__(self, raw: str, reason: str) -> None:
        detail = "" if reason == _INVALID_CRITERIA else f" ({reason})"
        super().__init__(f"{_INVALID_CRITERIA} {raw!r}{detail}", field="criteria")
        self.raw = raw
        self.reason = reason


@dataclass(frozen=True)
class Criterion:
    """One parsed criteria string such as ``<=+10%``.

    Attributes:
        raw: the string as written.
        operator: the comparison.
        value: the number after the operator (without sign and ``%``).
        relative: compared with the baseline of previous evaluations, not with ``value`` itself.
        increase: for a relative criterion, the target is above the baseline (``+`` or no sign).
        percent: for a relative criterion, ``value`` is a percentage of the baseline.
    """

    raw: str
    operator: Operator
    value: float
    relative: bool
    increase: bool
    percent: bool

    def target(self, baseline: float) -> float:
        """The value a measurement is compared with, given the aggregated previous values.

        Args:
            baseline: the aggregated previous values (ignored for absolute criteria).

        Returns:
            Keptn's target: ``value`` for an absolute criterion; ``b·(100±v)/100`` for a
            percentage; ``b±v`` for a relative amount.
        """
        if not self.relative:
            return self.value
        if self.percent:
            factor = 100.0 + self.value if self.increase else 100.0 - self.value
            return (baseline * factor) / 100.0
        return baseline + self.value if self.increase else baseline - self.value

    def holds(self, measured: float, target: float) -> bool:
        """Whether ``measured <operator> target`` (Go float64 comparison; NaN never holds)."""
        match self.operator:
            case "<":
                return measured < target
            case "<=":
                return measured <= target
            case "=":
                return measured == target
            case ">=":
                return measured >= target
            case ">":
                return measured > target


def parse_criterion(text: str) -> Criterion:
    """Parse a criteria string exactly as lighthouse's ``parseCriteriaString``.

    Spaces are removed; the string must start with an operator character (Keptn's regex has no
    end anchor, so that is all it checks); the operator is the longest of ``<= < = >= >`` that
    prefixes it; a trailing ``%`` makes it a relative percentage (an increase unless the number
    has a ``-`` sign); a leading ``+``/``-`` makes it relative; what remains must be a Go float.
    ``<=10%`` is the same as ``<=+10%``; ``=0%`` means "equal to the baseline".

    Args:
        text: the criteria string, e.g. ``<600``, ``<=+10%``, ``>=-80%``.

    Returns:
        The parsed criterion.

    Raises:
        InvalidCriterionError: with Keptn's ``invalid criteria string`` or ``could not parse
            criteria target value``.
    """
    compact = text.replace(" ", "")
    if not compact or compact[0] not in _OPERATOR_CHARACTERS:
        raise InvalidCriterionError(text, _INVALID_CRITERIA)
    operator = next((candidate for candidate in _OPERATORS if compact.startswith(candidate)), None)
    if operator is None:  # starts with "|": Keptn's regex accepts it, no operator does
        raise InvalidCriterionError(text, _INVALID_TARGET)
    rest = compact[len(operator) :]
    percent = relative = increase = False
    if rest.endswith("%"):
        percent = relative = increase = True
        rest = rest[:-1]
    if rest.startswith("-"):
        relative, increase = True, False
        rest = rest[1:]
    elif rest.startswith("+"):
        relative, increase = True, True
        rest = rest[1:]
    value = parse_go_float(rest)
    if value is None:
        raise InvalidCriterionError(text, _INVALID_TARGET)
    return Criterion(text, operator, value, relative, increase, percent)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class CriteriaSet(_Model):
    """A ``criteria`` list: all of its criteria must hold (AND)."""

    criteria: list[str] = Field(default_factory=list)


class Objective(_Model):
    """An SLO objective; without ``pass`` criteria it is informational (status ``info``)."""

    sli: str = ""
    display_name: str = Field("", alias="displayName")
    """Shown instead of the SLI name; default empty."""
    pass_: list[CriteriaSet] = Field(default_factory=list, alias="pass")
    """Criteria sets, any of which passes the objective (OR); default none (informational)."""
    warning: list[CriteriaSet] = Field(default_factory=list)
    """Criteria sets for a warning (half the weight) when ``pass`` fails; default none."""
    weight: int = 1
    """Weight in the total score; default 1 (Keptn turns 0 into 1)."""
    key_sli: bool = False
    """A failing key SLI fails the whole evaluation; default false."""


class Comparison(_Model):
    """How previous evaluations are chosen and aggregated; the defaults are Keptn's for no block."""

    compare_with: str = "single_result"
    include_result_with_score: str = "all"
    number_of_comparison_results: int = 1
    aggregate_function: str = "avg"


class TotalScore(_Model):
    """Score thresholds in percent, as strings (``"90%"`` or ``"90"``)."""

    pass_: str = Field("", alias="pass")
    warning: str = ""


class SLO(_Model):
    """A parsed ``slo.yaml`` with Keptn's defaults applied."""

    spec_version: str = ""
    filter: dict[str, str] = Field(default_factory=dict)
    comparison: Comparison = Field(default_factory=Comparison)
    objectives: list[Objective] = Field(default_factory=list)
    total_score: TotalScore | None = None


class _Decoder:
    """Decode loaded YAML into SLO fields like yaml.v3 into Go structs, naming the bad path."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.objective = ""
        """The SLI of the objective being decoded, named in errors (a path alone is hard to find)."""

    def fail(self, path: str, reason: str) -> NoReturn:
        where = f"{path} (objective {self.objective!r})" if self.objective else path
        detail = f"{where}: {reason}"
        raise InvalidSLOError(f"{self.prefix}: {detail}", field=path, detail=detail)

    def mapping(self, value: Any, path: str) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, found {describe(value)}")
        return value

    def sequence(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"expected a list, found {describe(value)}")
        return value

    def string(self, value: Any, path: str) -> str:
        text = scalar_text(value)
        if text is None:
            self.fail(path, f"expected a string, found {describe(value)}")
        return text

    def integer(self, value: Any, path: str) -> int:
        if value is None:
            return 0
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not -_GO_INT_LIMIT <= value < _GO_INT_LIMIT
        ):
            self.fail(path, f"expected a whole number, found {describe(value)}")
        return int(value)

    def boolean(self, value: Any, path: str) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, found {describe(value)}")
        return bool(value)

    def criteria_sets(self, value: Any, path: str) -> list[CriteriaSet]:
        sets = []
        for index, item in enumerate(self.sequence(value, path)):
            where = f"{path}[{index}]"
            if item is None:
                self.fail(where, "expected a mapping with 'criteria', found null")
            fields = self.mapping(item, where) or {}
            criteria = self.sequence(fields.get("criteria"), f"{where}.criteria")
            texts = [self.string(text, f"{where}.criteria[{i}]") for i, text in enumerate(criteria)]
            sets.append(CriteriaSet(criteria=texts))
        return sets


def parse_slo(content: str | bytes, *, project: str = "", stage: str = "", service: str = "") -> SLO:
    """Parse an ``slo.yaml`` as lighthouse did, with Keptn's defaults (spec §4.2).

    An empty document gives an SLO without objectives (which the evaluation then fails).

    Args:
        content: the file content.
        project: the project, named in errors.
        stage: the stage, named in errors.
        service: the service, named in errors.

    Returns:
        The SLO.

    Raises:
        InvalidSLOError: ``Could not parse SLO file for service <svc> in stage <stage> in project
            <project>: <what is wrong>``, for invalid YAML or a value of the wrong type; ``field``
            is the path of the bad value (e.g. ``objectives[1].weight``).
    """
    prefix = f"Could not parse SLO file for service {service} in stage {stage} in project {project}"
    decode = _Decoder(prefix)
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError:
            decode.fail("slo.yaml", "the file is not UTF-8 text")
    try:
        document = load_yaml(content, what="slo.yaml", field="slo.yaml")
    except InvalidInputError as exc:
        raise InvalidSLOError(f"{prefix}: {exc.message}", field="slo.yaml", detail=exc.message) from None
    top = decode.mapping(document, "slo.yaml") or {}

    filters = decode.mapping(top.get("filter"), "filter") or {}
    comparison = _comparison(decode, top.get("comparison"))
    objectives = []
    for index, item in enumerate(decode.sequence(top.get("objectives"), "objectives")):
        if item is None:
            continue  # Keptn drops null objectives
        objectives.append(_objective(decode, item, f"objectives[{index}]"))
    total = decode.mapping(top.get("total_score"), "total_score")
    total_score = None
    if total is not None:
        total_score = TotalScore(
            pass_=decode.string(total.get("pass"), "total_score.pass"),
            warning=decode.string(total.get("warning"), "total_score.warning"),
        )
    return SLO(
        spec_version=decode.string(top.get("spec_version"), "spec_version"),
        filter={str(key): decode.string(value, f"filter.{key}") for key, value in filters.items()},
        comparison=comparison,
        objectives=objectives,
        total_score=total_score,
    )


def _comparison(decode: _Decoder, value: Any) -> Comparison:
    block = decode.mapping(value, "comparison")
    if block is None:
        return Comparison()
    count = decode.integer(
        block.get("number_of_comparison_results"), "comparison.number_of_comparison_results"
    )
    return Comparison(
        # compare_with stays as written, even empty: lighthouse then compares with 3 results.
        compare_with=decode.string(block.get("compare_with"), "comparison.compare_with"),
        include_result_with_score=decode.string(
            block.get("include_result_with_score"), "comparison.include_result_with_score"
        )
        or "all",
        number_of_comparison_results=count or 3,
        aggregate_function=decode.string(block.get("aggregate_function"), "comparison.aggregate_function")
        or "avg",
    )


def _objective(decode: _Decoder, value: Any, path: str) -> Objective:
    fields = decode.mapping(value, path) or {}
    sli = decode.string(fields.get("sli"), f"{path}.sli")
    decode.objective = sli
    objective = Objective(
        sli=sli,
        display_name=decode.string(fields.get("displayName"), f"{path}.displayName"),
        pass_=decode.criteria_sets(fields.get("pass"), f"{path}.pass"),
        warning=decode.criteria_sets(fields.get("warning"), f"{path}.warning"),
        weight=decode.integer(fields.get("weight"), f"{path}.weight") or 1,
        key_sli=decode.boolean(fields.get("key_sli"), f"{path}.key_sli"),
    )
    decode.objective = ""
    return objective


def slo_problems(slo: SLO) -> list[str]:
    """List every criteria string of an SLO that lighthouse cannot parse.

    Keptn only notices these during an evaluation; this is for linting an SLO beforehand.

    Args:
        slo: a parsed SLO.

    Returns:
        One ``objective '<sli>': invalid criteria string '<raw>'`` line per bad string, in file
        order (pass before warning within an objective); empty if all are fine.
    """
    problems = []
    for objective in slo.objectives:
        for criteria_set in (*objective.pass_, *objective.warning):
            for raw in criteria_set.criteria:
                try:
                    parse_criterion(raw)
                except InvalidCriterionError:
                    problems.append(f"objective {objective.sli!r}: invalid criteria string {raw!r}")
    return problems
