#!/usr/bin/env python3
"""Strict FHIR R4 (4.0.1) validation of JSON resources, for Custodia's tests.

Usage (with the interpreter tools/fhir/ensure-venv prints):

    python validate.py FILE...      each file holds one resource, a Bundle, or a JSON array of them
    python validate.py < input      the same, read from standard input

Exit status: 0 when every resource is valid, 1 when one is not (or the input is not
JSON), 2 when the tool cannot run (missing packages, unreadable file, no resource),
3 when it fails on a bug of its own.

Every problem is printed on its own line as

    resource INDEX (TYPE) at PATH: MESSAGE

where INDEX counts the resources of one input from 0, TYPE is its resourceType and
PATH a FHIRPath-like location such as ``Bundle.entry[2].resource.subject``. Field
values are never printed: they may be health data. docs/fhir.md lists every check.
"""

import datetime
import decimal
import json
import re
import sys
import traceback
import typing
from dataclasses import dataclass, field
from functools import lru_cache

try:
    import fhir.resources
    from fhir.resources.fhirtypes import AbstractBaseType, AbstractType, Primitive
    from fhir.resources.fhirtypesvalidators import MODEL_CLASSES, get_fhir_model_class
    from fhir.resources.resource import Resource
    from pydantic import ValidationError
    from pydantic.fields import SHAPE_SINGLETON
except ImportError:
    print(
        "validate.py: fhir.resources is not installed here; run tools/fhir/ensure-venv "
        "and use the python it prints",
        file=sys.stderr,
    )
    sys.exit(2)

FHIR_VERSION = "4.0.1"

# Model classes of fhir.resources that are not concrete R4 resources.
ABSTRACT_RESOURCES = {"Resource", "DomainResource", "MetadataResource"}

# ---------------------------------------------------------------------------
# Primitive formats (FHIR R4 4.0.1, datatypes.html), beyond what pydantic checks:
# pydantic accepts a dateTime with a time but no zone, or hours without seconds.
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_MONTH = r"(0[1-9]|1[0-2])"
_DAY = r"(0[1-9]|[1-2][0-9]|3[0-1])"
PRIMITIVE_PATTERNS = {
    "date": re.compile(rf"{_YEAR}(-{_MONTH}(-{_DAY})?)?"),
    "dateTime": re.compile(rf"{_YEAR}(-{_MONTH}(-{_DAY}(T{_TIME}{_ZONE})?)?)?"),
    "instant": re.compile(rf"{_YEAR}-{_MONTH}-{_DAY}T{_TIME}{_ZONE}"),
    "time": re.compile(_TIME),
    "oid": re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+"),
    "uuid": re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
    "id": re.compile(r"[A-Za-z0-9\-.]{1,64}"),
}
INTEGER_RANGES = {
    "integer": (-(2**31), 2**31 - 1),
    "unsignedInt": (0, 2**31 - 1),
    "positiveInt": (1, 2**31 - 1),
}

# ---------------------------------------------------------------------------
# Required bindings of `code` elements: (model class, element) -> allowed codes.
# Values from the R4 4.0.1 value sets. Only the resources Custodia exports, Bundle,
# and the data types they use are listed (docs/fhir.md).
_COMPARATOR = {"<", "<=", ">=", ">"}
_GENDER = {"male", "female", "other", "unknown"}
_UNITS_OF_TIME = {"s", "min", "h", "d", "wk", "mo", "a"}
CODE_BINDINGS = {
    ("Patient", "gender"): _GENDER,
    ("PatientContact", "gender"): _GENDER,
    ("PatientLink", "type"): {"replaced-by", "replaces", "refer", "seealso"},
    ("AllergyIntolerance", "type"): {"allergy", "intolerance"},
    ("AllergyIntolerance", "category"): {"food", "medication", "environment", "biologic"},
    ("AllergyIntolerance", "criticality"): {"low", "high", "unable-to-assess"},
    ("AllergyIntoleranceReaction", "severity"): {"mild", "moderate", "severe"},
    ("MedicationStatement", "status"): {
        "active", "completed", "entered-in-error", "intended",
        "stopped", "on-hold", "unknown", "not-taken",
    },
    ("CarePlan", "status"): {
        "draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown",
    },
    ("CarePlan", "intent"): {"proposal", "plan", "order", "option"},
    ("CarePlanActivityDetail", "kind"): {
        "Appointment", "CommunicationRequest", "DeviceRequest", "MedicationRequest",
        "NutritionOrder", "Task", "ServiceRequest", "VisionPrescription",
    },
    ("CarePlanActivityDetail", "status"): {
        "not-started", "scheduled", "in-progress", "on-hold", "completed",
        "cancelled", "stopped", "unknown", "entered-in-error",
    },
    ("Appointment", "status"): {
        "proposed", "pending", "booked", "arrived", "fulfilled", "cancelled",
        "noshow", "entered-in-error", "checked-in", "waitlist",
    },
    ("AppointmentParticipant", "required"): {"required", "optional", "information-only"},
    ("AppointmentParticipant", "status"): {"accepted", "declined", "tentative", "needs-action"},
    ("Communication", "status"): {
        "preparation", "in-progress", "not-done", "on-hold", "stopped",
        "completed", "entered-in-error", "unknown",
    },
    ("Communication", "priority"): {"routine", "urgent", "asap", "stat"},
    ("Bundle", "type"): {
        "document", "message", "transaction", "transaction-response", "batch",
        "batch-response", "history", "searchset", "collection",
    },
    ("BundleEntryRequest", "method"): {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"},
    ("BundleEntrySearch", "mode"): {"match", "include", "outcome"},
    ("Identifier", "use"): {"usual", "official", "temp", "secondary", "old"},
    ("HumanName", "use"): {"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"},
    ("ContactPoint", "system"): {"phone", "fax", "email", "pager", "url", "sms", "other"},
    ("ContactPoint", "use"): {"home", "work", "temp", "old", "mobile"},
    ("Address", "use"): {"home", "work", "temp", "old", "billing"},
    ("Address", "type"): {"postal", "physical", "both"},
    ("Narrative", "status"): {"generated", "extensions", "additional", "empty"},
    ("Quantity", "comparator"): _COMPARATOR,
    ("Age", "comparator"): _COMPARATOR,
    ("Count", "comparator"): _COMPARATOR,
    ("Distance", "comparator"): _COMPARATOR,
    ("Duration", "comparator"): _COMPARATOR,
    ("TimingRepeat", "durationUnit"): _UNITS_OF_TIME,
    ("TimingRepeat", "periodUnit"): _UNITS_OF_TIME,
    ("TimingRepeat", "dayOfWeek"): {"mon", "tue", "wed", "thu", "fri", "sat", "sun"},
}

# Required bindings of CodeableConcept elements: (model class, element) -> (system, codes).
# At least one coding must be from the system, and every coding of that system must
# use one of its codes.
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
CONCEPT_BINDINGS = {
    ("Condition", "clinicalStatus"): (
        CONDITION_CLINICAL,
        {"active", "recurrence", "relapse", "inactive", "remission", "resolved"},
    ),
    ("Condition", "verificationStatus"): (
        CONDITION_VERIFICATION,
        {"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"},
    ),
    ("AllergyIntolerance", "clinicalStatus"): (ALLERGY_CLINICAL, {"active", "inactive", "resolved"}),
    ("AllergyIntolerance", "verificationStatus"): (
        ALLERGY_VERIFICATION,
        {"unconfirmed", "confirmed", "refuted", "entered-in-error"},
    ),
}

RESTFUL_URL = re.compile(
    r"(?:(?P<base>https?://[^\s?#]+)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?"
)
ABSOLUTE_URL = re.compile(r"https?://[^\s/?#]+[^\s]*")


def is_resource_type(name):
    """Whether `name` is a concrete R4 resource type."""
    return isinstance(name, str) and _is_resource_type(name)


@lru_cache(maxsize=None)
def _is_resource_type(name):
    if name in ABSTRACT_RESOURCES or name not in MODEL_CLASSES:
        return False
    return issubclass(get_fhir_model_class(name), Resource)


@lru_cache(maxsize=None)
def elements_of(model):
    """A model's JSON element names mapped to their pydantic fields."""
    return {
        f.alias: f
        for f in model.__fields__.values()
        if f.name not in ("resource_type", "fhir_comments")
    }


def element_type(f):
    """The FHIR type class of a field's items (unwrapping Optional)."""
    t = f.type_
    if typing.get_origin(t) is typing.Union:
        t = next(a for a in typing.get_args(t) if a is not type(None))
    return t


# ---------------------------------------------------------------------------
@dataclass
class BundleScope:
    """One Bundle's entries: fullUrl -> resourceType."""

    full_urls: dict


@dataclass
class Scope:
    """A resource that is not contained, with what its references may resolve to."""

    resource_type: str
    path: str
    full_url: typing.Optional[str] = None
    bundle: typing.Optional[BundleScope] = None
    contained: dict = field(default_factory=dict)  # id -> resourceType
    local_references: set = field(default_factory=set)  # "#id" targets referenced


@dataclass
class Node:
    """An object of the resource, with the model class it was read as."""

    model: str
    json: dict
    path: str
    scope: Scope


@dataclass
class ReferenceSite:
    """A Reference element, and the resource types its element allows."""

    json: dict
    path: str
    allowed: typing.Optional[list]
    scope: Scope
    in_contained: typing.Optional[tuple]  # (resourceType, id) of the contained resource it is in


class Checker:
    """Validates one top-level resource and collects its problems."""

    def __init__(self):
        self.problems = []  # (path, message)
        self.nodes = []
        self.references = []
        self.scopes = []
        self.aligned_nulls = set()  # paths of nulls that keep a primitive array aligned

    def problem(self, path, message):
        self.problems.append((path, message))

    # -- Strict JSON, guided by the model -------------------------------------
    def walk_resource(self, value, path, bundle=None, full_url=None, container=None):
        """Checks a JSON value that must be a resource; returns its scope."""
        if not isinstance(value, dict):
            self.problem(path, "a resource must be a JSON object")
            return None
        rtype = value.get("resourceType")
        if not isinstance(rtype, str):
            self.problem(path, "missing resourceType")
            return None
        if not is_resource_type(rtype):
            self.problem(path, "resourceType is not an R4 resource type")
            return None
        model = get_fhir_model_class(rtype)
        if container is None:
            scope = Scope(rtype, path, full_url, bundle)
            self.scopes.append(scope)
        else:
            scope = container
            if not isinstance(value.get("id"), str):
                self.problem(path, "dom-3: a contained resource has an id to be referenced by")
            meta = value.get("meta")
            if isinstance(meta, dict) and ("versionId" in meta or "lastUpdated" in meta):
                self.problem(f"{path}.meta", "dom-4: a contained resource has no versionId or lastUpdated")
            if isinstance(meta, dict) and "security" in meta:
                self.problem(f"{path}.meta", "dom-5: a contained resource has no security labels")
        contained = (rtype, value.get("id")) if container is not None else None
        self.walk_object(model, value, path, scope, contained)
        return scope

    def walk_object(self, model, obj, path, scope, in_contained):
        if not isinstance(obj, dict):
            self.problem(path, "must be a JSON object")
            return
        if not obj:
            self.problem(path, "empty object (FHIR JSON has no empty elements)")
            return
        is_resource = issubclass(model, Resource)
        name = model.__name__
        self.nodes.append(Node(name, obj, path, scope))
        if name == "Bundle":
            entries = obj.get("entry") if isinstance(obj.get("entry"), list) else []
            bundle = BundleScope(
                {
                    e["fullUrl"]: e.get("resource", {}).get("resourceType")
                    for e in entries
                    if isinstance(e, dict) and isinstance(e.get("fullUrl"), str)
                    and isinstance(e.get("resource", {}), dict)
                }
            )
            scope = dataclass_replace_bundle(scope, bundle)
        if is_resource and in_contained is None:
            # Contained resources' ids, for "#id" references anywhere in this resource.
            for item in obj.get("contained", []) if isinstance(obj.get("contained"), list) else []:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    if item["id"] in scope.contained:
                        self.problem(f"{path}.contained", "two contained resources share an id")
                    scope.contained[item["id"]] = item.get("resourceType")
        elements = elements_of(model)
        for key, value in obj.items():
            if key == "resourceType":
                if not is_resource:
                    self.problem(f"{path}.{key}", "resourceType is only allowed on resources")
                continue
            f = elements.get(key)
            if f is None:
                self.problem(f"{path}.{key}", f"unknown element of {name}")
                continue
            sibling = key[1:] if key.startswith("_") else f"_{key}"
            if f.shape == SHAPE_SINGLETON:
                if value is None:
                    self.problem(f"{path}.{key}", "null is not allowed")
                elif isinstance(value, list):
                    self.problem(f"{path}.{key}", "must not be an array")
                else:
                    self.walk_value(name, obj, f, value, f"{path}.{key}", scope, in_contained)
                continue
            if not isinstance(value, list):
                self.problem(f"{path}.{key}", "must be an array")
                continue
            if not value:
                self.problem(f"{path}.{key}", "empty array (FHIR JSON has no empty elements)")
                continue
            partner = obj.get(sibling)
            for i, item in enumerate(value):
                item_path = f"{path}.{key}[{i}]"
                if item is None:
                    # Only primitive arrays and their `_` extension arrays hold nulls,
                    # to keep the two aligned.
                    aligned = isinstance(partner, list) and len(partner) == len(value)
                    if not aligned or partner[i] is None:
                        self.problem(item_path, "null is not allowed here")
                    else:
                        self.aligned_nulls.add(item_path)
                    continue
                self.walk_value(name, obj, f, item, item_path, scope, in_contained)

    def walk_value(self, owner, parent, f, value, path, scope, in_contained):
        t = element_type(f)
        if t is bool:  # pydantic stands in its own bool for fhirtypes.Boolean
            self.check_primitive("boolean", value, path)
            return
        if isinstance(t, type) and issubclass(t, Primitive):
            kind = t.__visit_name__
            if kind in ("canonical", "uri", "url") and isinstance(value, str) and value.startswith("#"):
                # dom-3 counts these as references to a contained resource (or, "#", to the container).
                local = value[1:] or (in_contained[1] if in_contained is not None else None)
                scope.local_references.add(local)
            self.check_primitive(kind, value, path)
            return
        if isinstance(t, type) and issubclass(t, (AbstractType, AbstractBaseType)):
            kind = t.__resource_type__
            if kind == "Resource":
                if f.alias == "contained":
                    if in_contained is not None:
                        self.problem(path, "dom-2: a contained resource cannot contain resources")
                        return
                    self.walk_resource(value, path, container=scope)
                elif owner == "BundleEntry" and f.alias == "resource":
                    full_url = parent.get("fullUrl") if isinstance(parent.get("fullUrl"), str) else None
                    self.walk_resource(value, path, bundle=scope.bundle, full_url=full_url)
                else:
                    self.walk_resource(value, path)
                return
            model = get_fhir_model_class(kind)
            if kind == "Reference" and isinstance(value, dict):
                self.references.append(
                    ReferenceSite(value, path, f.field_info.extra.get("enum_reference_types"), scope, in_contained)
                )
            self.walk_object(model, value, path, scope, in_contained)
            return
        self.problem(path, "element of an unsupported type")

    def check_primitive(self, kind, value, path):
        if kind == "boolean":
            if not isinstance(value, bool):
                self.problem(path, "must be JSON true or false")
            return
        if kind in INTEGER_RANGES:
            low, high = INTEGER_RANGES[kind]
            if isinstance(value, bool) or not isinstance(value, int):
                self.problem(path, f"must be a JSON integer ({kind})")
            elif not low <= value <= high:
                self.problem(path, f"out of range for {kind}")
            return
        if kind == "decimal":
            if isinstance(value, bool) or not isinstance(value, (int, decimal.Decimal)):
                self.problem(path, "must be a JSON number")
            return
        if not isinstance(value, str):
            self.problem(path, f"must be a JSON string ({kind})")
            return
        if value == "":
            self.problem(path, "empty string (FHIR JSON has no empty elements)")
            return
        pattern = PRIMITIVE_PATTERNS.get(kind)
        if pattern is not None and not pattern.fullmatch(value):
            self.problem(path, f"not a valid {kind}")
            return
        if kind in ("date", "dateTime", "instant") and len(value) >= 10:
            try:
                datetime.date.fromisoformat(value[:10])
            except ValueError:
                self.problem(path, f"not a calendar date ({kind})")

    # -- pydantic ---------------------------------------------------------------
    def run_pydantic(self, resource, rtype):
        try:
            get_fhir_model_class(rtype).parse_obj(resource)
        except ValidationError as error:
            reported = [p for p, _ in self.problems]
            for e in error.errors():
                if e["type"] == "value_error.extra":
                    continue  # the strict walk names unknown elements already
                path = loc_to_path(rtype, e["loc"])
                if e["type"] == "type_error.none.not_allowed" and path in self.aligned_nulls:
                    continue  # fhir.resources does not model nulls in primitive arrays
                if any(path == p or path.startswith(p + ".") or path.startswith(p + "[") for p in reported):
                    continue
                self.problem(path, e["msg"])
        except Exception as error:  # noqa: BLE001 - fhir.resources' own failures
            # fhir.resources raises LookupError, TypeError or AttributeError instead of
            # a ValidationError on some shapes (an unknown nested resourceType, a
            # number where a resource belongs), all of which the walk reports.
            if not self.problems:
                self.problem(rtype, f"the R4 model cannot read this resource ({type(error).__name__})")

    # -- What pydantic cannot check ----------------------------------------------
    def check_semantics(self):
        for node in self.nodes:
            self.check_bindings(node)
            check = INVARIANTS.get(node.model)
            if check is not None:
                for path, message in check(node.json, node.path):
                    self.problem(path, message)
        for site in self.references:
            self.check_reference(site)
        for scope in self.scopes:
            for cid, ctype in scope.contained.items():
                if cid not in scope.local_references:
                    self.problem(
                        f"{scope.path}.contained",
                        f"dom-3: a contained {ctype} is not referenced from its container",
                    )

    def check_bindings(self, node):
        for key, value in node.json.items():
            allowed = CODE_BINDINGS.get((node.model, key))
            if allowed is not None:
                for i, code in enumerate(value if isinstance(value, list) else [value]):
                    if code is not None and code not in allowed:
                        where = f"{node.path}.{key}" + (f"[{i}]" if isinstance(value, list) else "")
                        self.problem(where, "code outside the required value set: one of " + " | ".join(sorted(allowed)))
            binding = CONCEPT_BINDINGS.get((node.model, key))
            if binding is not None:
                system, codes = binding
                codings = [c for c in value.get("coding", []) if c.get("system") == system]
                where = f"{node.path}.{key}"
                if not codings:
                    self.problem(where, f"needs a coding from {system} (required binding)")
                for c in codings:
                    if c.get("code") not in codes:
                        self.problem(where, f"coding from {system} must use one of " + " | ".join(sorted(codes)))

    def check_reference(self, site):
        ref = site.json.get("reference")
        path = f"{site.path}.reference"
        scope = site.scope
        declared = site.json.get("type")
        if declared is not None and ":" not in declared and not is_resource_type(declared):
            self.problem(f"{site.path}.type", "not an R4 resource type")
            declared = None
        elif declared is not None and ":" in declared:
            declared = None
        target = None
        if ref is None:
            target = declared
        elif ref == "#":
            if site.in_contained is None:
                self.problem(path, "'#' refers to the container and only appears inside a contained resource")
                return
            scope.local_references.add(site.in_contained[1])
            target = scope.resource_type
        elif ref.startswith("#"):
            if ref[1:] not in scope.contained:
                self.problem(path, "ref-1: no contained resource has this id")
                return
            scope.local_references.add(ref[1:])
            target = scope.contained[ref[1:]]
        elif ref.startswith("urn:"):
            if not (PRIMITIVE_PATTERNS["uuid"].fullmatch(ref) or PRIMITIVE_PATTERNS["oid"].fullmatch(ref)):
                self.problem(path, "not a valid urn:uuid: or urn:oid: reference")
                return
            if scope.bundle is not None:
                if ref not in scope.bundle.full_urls:
                    self.problem(path, "does not resolve to the fullUrl of any entry of the Bundle")
                    return
                target = scope.bundle.full_urls[ref]
        else:
            restful = RESTFUL_URL.fullmatch(ref)
            if restful is not None and is_resource_type(restful["type"]):
                target = restful["type"]
                resolved = self.resolve_in_bundle(scope, ref, restful)
                if resolved is not None:
                    target = resolved
            elif ABSOLUTE_URL.fullmatch(ref):
                if scope.bundle is not None and ref in scope.bundle.full_urls:
                    target = scope.bundle.full_urls[ref]
            else:
                self.problem(path, "not a Type/id, absolute URL, urn:uuid:, urn:oid: or #contained reference")
                return
        if declared is not None and target is not None and declared != target:
            self.problem(f"{site.path}.type", "disagrees with the type of the referenced resource")
        allowed = site.allowed
        if target is not None and allowed and "Resource" not in allowed and target not in allowed:
            self.problem(path, "refers to a " + target + "; this element allows " + " | ".join(allowed))

    @staticmethod
    def resolve_in_bundle(scope, ref, restful):
        """The type of the Bundle entry a RESTful reference points to, if any."""
        if scope.bundle is None:
            return None
        if ref in scope.bundle.full_urls:
            return scope.bundle.full_urls[ref]
        if restful["base"] is None and scope.full_url is not None:
            own = RESTFUL_URL.fullmatch(scope.full_url)
            if own is not None and own["base"] is not None:
                absolute = f"{own['base']}/{restful['type']}/{restful['id']}"
                return scope.bundle.full_urls.get(absolute)
        return None


def dataclass_replace_bundle(scope, bundle):
    """The scope of a Bundle's own elements: its entries resolve against `bundle`."""
    return Scope(scope.resource_type, scope.path, scope.full_url, bundle, scope.contained, scope.local_references)


def loc_to_path(rtype, loc):
    path = rtype
    for part in loc:
        if part == "__root__":
            continue
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


# ---------------------------------------------------------------------------
# Invariants (R4 4.0.1, severity error) that neither the model nor the walk checks.
def _has_coding(concept, system, codes):
    if not isinstance(concept, dict):
        return False
    return any(c.get("system") == system and c.get("code") in codes for c in concept.get("coding", []))


def _abated(obj):
    return any(k.startswith("abatement") for k in obj)


def condition_invariants(obj, path):
    if _abated(obj) and not _has_coding(obj.get("clinicalStatus"), CONDITION_CLINICAL, {"inactive", "resolved", "remission"}):
        yield path, "con-4: an abated condition's clinicalStatus is inactive, resolved or remission"
    if "clinicalStatus" in obj and _has_coding(obj.get("verificationStatus"), CONDITION_VERIFICATION, {"entered-in-error"}):
        yield path, "con-5: no clinicalStatus when verificationStatus is entered-in-error"


def allergy_invariants(obj, path):
    erroneous = _has_coding(obj.get("verificationStatus"), ALLERGY_VERIFICATION, {"entered-in-error"})
    if not erroneous and "clinicalStatus" not in obj:
        yield path, "ait-1: clinicalStatus is required unless verificationStatus is entered-in-error"
    if erroneous and "clinicalStatus" in obj:
        yield path, "ait-2: no clinicalStatus when verificationStatus is entered-in-error"


def careplan_activity_invariants(obj, path):
    if "detail" in obj and "reference" in obj:
        yield path, "cpl-3: an activity has a reference or a detail, not both"


def appointment_invariants(obj, path):
    if ("start" in obj) != ("end" in obj):
        yield path, "app-2: start and end are both present or both absent"
    if not ("start" in obj and "end" in obj) and obj.get("status") not in ("proposed", "cancelled", "waitlist"):
        yield path, "app-3: only proposed, cancelled or waitlist appointments may lack start and end"
    if "cancelationReason" in obj and obj.get("status") not in ("cancelled", "noshow"):
        yield path, "app-4: cancelationReason only on cancelled or noshow appointments"


def appointment_participant_invariants(obj, path):
    if "type" not in obj and "actor" not in obj:
        yield path, "app-1: a participant has a type or an actor"


def patient_contact_invariants(obj, path):
    if not any(k in obj for k in ("name", "telecom", "address", "organization")):
        yield path, "pat-1: a contact has a name, telecom, address or organization"


def contact_point_invariants(obj, path):
    if "value" in obj and "system" not in obj:
        yield path, "cpt-2: a ContactPoint with a value has a system"


def quantity_invariants(obj, path):
    if "code" in obj and "system" not in obj:
        yield path, "qty-3: a Quantity with a code has a system"


def extension_invariants(obj, path):
    has_value = any(k.startswith("value") for k in obj)
    if has_value == ("extension" in obj):
        yield path, "ext-1: an extension has either extensions or a value[x], not both"


def period_invariants(obj, path):
    if "start" in obj and "end" in obj:
        yield from _ordered(obj["start"], obj["end"], path, "per-1: end is before start")


def timing_repeat_invariants(obj, path):
    rules = [
        ("duration" in obj and "durationUnit" not in obj, "tim-1: a duration has a durationUnit"),
        ("period" in obj and "periodUnit" not in obj, "tim-2: a period has a periodUnit"),
        (obj.get("duration", 0) < 0, "tim-4: duration is not negative"),
        (obj.get("period", 0) < 0, "tim-5: period is not negative"),
        ("periodMax" in obj and "period" not in obj, "tim-6: periodMax only with period"),
        ("durationMax" in obj and "duration" not in obj, "tim-7: durationMax only with duration"),
        ("countMax" in obj and "count" not in obj, "tim-8: countMax only with count"),
        ("offset" in obj and ("when" not in obj or any(w in ("C", "CM", "CD", "CV") for w in obj["when"])),
         "tim-9: offset only with a when that is not C, CM, CD or CV"),
        ("timeOfDay" in obj and "when" in obj, "tim-10: timeOfDay or when, not both"),
    ]
    for broken, message in rules:
        if broken:
            yield path, message


def bundle_invariants(obj, path):
    btype = obj.get("type")
    entries = obj.get("entry", [])
    if "total" in obj and btype not in ("searchset", "history"):
        yield path, "bdl-1: total only in a searchset or history"
    seen = {}
    for i, entry in enumerate(entries):
        where = f"{path}.entry[{i}]"
        if "search" in entry and btype != "searchset":
            yield where, "bdl-2: entry.search only in a searchset"
        needs_request = btype in ("batch", "transaction", "history")
        if ("request" in entry) != needs_request:
            yield where, "bdl-3: entry.request is required in batch, transaction and history, and absent otherwise"
        needs_response = btype in ("batch-response", "transaction-response", "history")
        if ("response" in entry) != needs_response:
            yield where, "bdl-4: entry.response is required in batch-response, transaction-response and history, and absent otherwise"
        if not any(k in entry for k in ("resource", "request", "response")):
            yield where, "bdl-5: an entry has a resource, a request or a response"
        full_url = entry.get("fullUrl")
        resource = entry.get("resource")
        if full_url is None:
            continue
        if "/_history/" in full_url:
            yield f"{where}.fullUrl", "bdl-8: fullUrl is not version specific"
        if not (
            ABSOLUTE_URL.fullmatch(full_url)
            or PRIMITIVE_PATTERNS["uuid"].fullmatch(full_url)
            or PRIMITIVE_PATTERNS["oid"].fullmatch(full_url)
        ):
            yield f"{where}.fullUrl", "must be an absolute http(s) URL, urn:uuid: or urn:oid:"
        version = (resource or {}).get("meta", {}).get("versionId")
        if btype != "history" and (full_url, version) in seen:
            yield f"{where}.fullUrl", f"bdl-7: the same fullUrl as entry[{seen[(full_url, version)]}]"
        seen.setdefault((full_url, version), i)
        restful = RESTFUL_URL.fullmatch(full_url)
        if restful is not None and restful["base"] is not None and isinstance(resource, dict):
            if restful["type"] != resource.get("resourceType") or restful["id"] != resource.get("id"):
                yield f"{where}.fullUrl", "a RESTful fullUrl ends with the resource's type and id"
    first = entries[0].get("resource", {}) if entries else {}
    if btype == "document":
        identifier = obj.get("identifier", {})
        if "system" not in identifier or "value" not in identifier:
            yield path, "bdl-9: a document has an identifier with a system and a value"
        if "timestamp" not in obj:
            yield path, "bdl-10: a document has a timestamp"
        if first.get("resourceType") != "Composition":
            yield path, "bdl-11: a document starts with a Composition"
    if btype == "message" and first.get("resourceType") != "MessageHeader":
        yield path, "bdl-12: a message starts with a MessageHeader"


def _instant(value):
    """A comparable form of a date or zoned dateTime of full precision, else None."""
    try:
        if len(value) == 10:
            return datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.timezone.utc), True
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")), False
    except ValueError:
        return None


def _ordered(start, end, path, message):
    a, b = _instant(start), _instant(end)
    # Values of different precision are not comparable (FHIRPath gives empty).
    if a is not None and b is not None and a[1] == b[1] and b[0] < a[0]:
        yield path, message


INVARIANTS = {
    "Condition": condition_invariants,
    "AllergyIntolerance": allergy_invariants,
    "CarePlanActivity": careplan_activity_invariants,
    "Appointment": appointment_invariants,
    "AppointmentParticipant": appointment_participant_invariants,
    "PatientContact": patient_contact_invariants,
    "ContactPoint": contact_point_invariants,
    "Quantity": quantity_invariants,
    "Age": quantity_invariants,
    "Count": quantity_invariants,
    "Distance": quantity_invariants,
    "Duration": quantity_invariants,
    "Extension": extension_invariants,
    "Period": period_invariants,
    "TimingRepeat": timing_repeat_invariants,
    "Bundle": bundle_invariants,
}


# ---------------------------------------------------------------------------
def validate(resource):
    """Every problem of one top-level resource, as (path, message) pairs."""
    checker = Checker()
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    label = rtype if isinstance(rtype, str) and is_resource_type(rtype) else "Resource"
    checker.walk_resource(resource, label)
    if is_resource_type(rtype):
        checker.run_pydantic(resource, rtype)
        if not checker.problems:
            checker.check_semantics()
    return label, checker.problems


class DuplicateKey(ValueError):
    """A JSON object names the same key twice."""


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateKey(key)
        obj[key] = value
    return obj


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def load(text):
    """The resources of one input: a resource or a JSON array of them."""
    data = json.loads(
        text,
        parse_float=decimal.Decimal,
        parse_constant=_reject_constant,
        object_pairs_hook=_no_duplicates,
    )
    return data if isinstance(data, list) else [data]


def main(argv):
    if fhir.resources.__fhir_version__ != FHIR_VERSION:
        print(f"validate.py: fhir.resources models FHIR {fhir.resources.__fhir_version__}, not {FHIR_VERSION}", file=sys.stderr)
        return 2
    inputs = []
    if argv:
        for name in argv:
            try:
                with open(name, "rb") as handle:
                    inputs.append((f"{name}: ", handle.read().decode("utf-8")))
            except OSError as error:
                print(f"validate.py: cannot read {name}: {error.strerror}", file=sys.stderr)
                return 2
            except UnicodeDecodeError:
                print(f"{name}: input: not UTF-8")
                return 1
    else:
        try:
            inputs.append(("", sys.stdin.buffer.read().decode("utf-8")))
        except UnicodeDecodeError:
            print("input: not UTF-8")
            return 1
    total = invalid = 0
    for prefix, text in inputs:
        try:
            resources = load(text)
        except DuplicateKey as error:
            print(f"{prefix}input: a JSON object names the key {error.args[0]!r} twice")
            total += 1
            invalid += 1
            continue
        except ValueError as error:
            # json's messages give a position, never the text.
            message = error.msg if isinstance(error, json.JSONDecodeError) else "not JSON"
            where = f" (line {error.lineno} column {error.colno})" if isinstance(error, json.JSONDecodeError) else ""
            print(f"{prefix}input: not JSON: {message}{where}")
            total += 1
            invalid += 1
            continue
        for index, resource in enumerate(resources):
            total += 1
            rtype, problems = validate(resource)
            if problems:
                invalid += 1
            for path, message in problems:
                print(f"{prefix}resource {index} ({rtype}) at {path}: {message}")
    if total == 0:
        print("validate.py: no resource given", file=sys.stderr)
        return 2
    if invalid:
        print(f"FHIR R4 {FHIR_VERSION}: {invalid} of {total} invalid")
        return 1
    print(f"FHIR R4 {FHIR_VERSION}: all {total} valid")
    return 0


def _crash_report(error):
    """Where the validator failed, without the exception's message (it may hold a value)."""
    frames = traceback.extract_tb(error.__traceback__)
    where = "; ".join(f"{f.name} (line {f.lineno})" for f in frames[-4:])
    return f"validate.py: internal error {type(error).__name__} in {where}"


if __name__ == "__main__":
    try:
        status = main(sys.argv[1:])
    except Exception as crash:  # a bug here must not read as "invalid" (exit 1)
        print(_crash_report(crash), file=sys.stderr)
        status = 3
    sys.exit(status)
