# schemathesis hooks for scripts/conformance: accept the one known, deliberate leniency of Berth's request
# parsing (JSON null in an optional field means the field is absent), reported as a spec mismatch; every other
# failure stays a failure.
"""negative_data_rejection sends `"Force": null` (or another optional property set to null) as schema-violating
data, because the spec does not mark those properties `nullable`. Berth (serde `Option`) deliberately
reads null as "not given" and answers the element on its own. Such a failure is dropped here only when every
invalid component of the case is a property turned to null (and null in the body); the run's summary counts
the dropped failures ("Filtered: N (dropped by `filter_failure`)").
"""

import re

import schemathesis
from schemathesis.core.failures import AcceptedNegativeData

# One invalid component, as the coverage phase ("Force: Incorrect type") and the fuzzing phase ("violates `type`
# at /items/properties/Force (was boolean, became null)") word it.
_COMPONENT = re.compile(
    r"^(?:\s*-\s*)?(?:in body\s*-?\s*)?(?:array with invalid items:\s*)?"
    r"(?:(?P<coverage>\w+): Incorrect type"
    r"|violates `type` at (?:/items)?/properties/(?P<fuzzing>\w+) \(was \w+, became null\))\s*$"
)


def _null_properties(body):
    items = body if isinstance(body, list) else [body]
    # Lowercased: schemathesis names a property camelCase in some messages ("nextToken" for NextToken).
    return {key.lower() for item in items if isinstance(item, dict) for key, value in item.items() if value is None}


def _only_nulls(message, body):
    _, found, components = message.partition("Invalid component:")
    lines = [line for line in components.strip().splitlines() if line.strip()]
    if not found or not lines:
        return False
    if len(lines) > 1 and not lines[0].strip().startswith("-"):
        lines = lines[1:]  # a header ("in body") above one bullet per mutation
    nulls = _null_properties(body)
    for line in lines:
        match = _COMPONENT.match(line)
        if not match or (match.group("coverage") or match.group("fuzzing")).lower() not in nulls:
            return False
    return True


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if isinstance(failure, AcceptedNegativeData) and response.status_code == 200:
        return not _only_nulls(failure.message, case.body)
    return True
