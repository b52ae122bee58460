//! The table of paths and methods the API serves, read from its own OpenAPI
//! document, so a 405 can say which methods a path does accept (`Allow`) and a
//! rejected request can be told which parameter or body field is at fault, by
//! the name the spec gives it.

use serde_json::{Map, Value};

/// One path template (`/v1/clients/{client_id}`) split into segments.
#[derive(Debug, Clone)]
struct Route {
    segments: Vec<Segment>,
    methods: Vec<String>,
    /// The top-level shape of each method's JSON request body, where it has one.
    bodies: Vec<(String, BodySchema)>,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    /// A parameter, by its name in the template.
    Param(String),
}

/// The JSON types a schema can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `string`.
    String,
    /// `integer`.
    Integer,
    /// `number`.
    Number,
    /// `boolean`.
    Boolean,
    /// `array`.
    Array,
    /// `object`.
    Object,
}

impl JsonKind {
    fn from_schema_type(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            "array" => Self::Array,
            "object" => Self::Object,
            _ => return None,
        })
    }

    /// Whether `value` is of this kind.
    #[must_use]
    pub fn admits(self, value: &Value) -> bool {
        match self {
            Self::String => value.is_string(),
            Self::Integer => value.is_i64() || value.is_u64(),
            Self::Number => value.is_number(),
            Self::Boolean => value.is_boolean(),
            Self::Array => value.is_array(),
            Self::Object => value.is_object(),
        }
    }

    /// The kind with its article, for a sentence: "an integer".
    #[must_use]
    pub const fn describe(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Integer => "an integer",
            Self::Number => "a number",
            Self::Boolean => "a boolean",
            Self::Array => "an array",
            Self::Object => "an object",
        }
    }
}

/// The top-level fields of an object body: which are required, and the kind of each.
#[derive(Debug, Clone, Default)]
struct BodySchema {
    required: Vec<String>,
    /// The JSON types of the whole body, to any depth the spec gives.
    shape: Shape,
    constraints: Vec<(String, Constraints)>,
    /// For a union discriminated by a property (poem-openapi's `Union`), the
    /// property's name and each value's own schema: a body is judged by the
    /// variant its discriminator names.
    variants: Option<(String, Vec<(String, BodySchema)>)>,
}

impl BodySchema {
    /// The schema `object` is judged by: its variant's for a discriminated union
    /// (none when the discriminator is absent or unknown, which poem refuses in its
    /// own words), else this one.
    fn for_body(&self, object: &Map<String, Value>) -> Option<&Self> {
        match &self.variants {
            None => Some(self),
            Some((property, variants)) => {
                let value = object.get(property)?.as_str()?;
                variants
                    .iter()
                    .find(|(name, _)| name == value)
                    .map(|(_, schema)| schema)
            }
        }
    }
}

/// The string constraints a property declares: enough to name the rule a value
/// broke without quoting the value.
#[derive(Debug, Clone, Default)]
struct Constraints {
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<regex::Regex>,
    one_of: Option<Vec<Value>>,
    /// `format: date` (or `naive-date`): a real calendar date, `YYYY-MM-DD`.
    date: bool,
}

impl Constraints {
    fn from_schema(schema: &Value) -> Self {
        Self {
            min_length: schema.get("minLength").and_then(Value::as_u64),
            max_length: schema.get("maxLength").and_then(Value::as_u64),
            pattern: schema
                .get("pattern")
                .and_then(Value::as_str)
                .and_then(|p| regex::Regex::new(p).ok()),
            one_of: schema.get("enum").and_then(Value::as_array).cloned(),
            // poem-openapi names chrono's `NaiveDate` format `naive-date`.
            date: matches!(
                schema.get("format").and_then(Value::as_str),
                Some("date" | "naive-date")
            ),
        }
    }

    /// The first rule `value` breaks, in words.
    fn broken_rule(&self, value: &Value) -> Option<String> {
        if let Some(allowed) = &self.one_of
            && !allowed.contains(value)
        {
            let names: Vec<String> = allowed
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            return Some(format!("must be one of {}", names.join(", ")));
        }
        let text = value.as_str()?;
        let chars = text.chars().count() as u64;
        if let Some(min) = self.min_length.filter(|min| chars < *min) {
            return Some(format!("must be at least {min} characters"));
        }
        if let Some(max) = self.max_length.filter(|max| chars > *max) {
            return Some(format!("must be at most {max} characters"));
        }
        if self.pattern.as_ref().is_some_and(|p| !p.is_match(text)) {
            return Some("does not have the documented format".to_owned());
        }
        if self.date && chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_err() {
            return Some("must be a real date, YYYY-MM-DD".to_owned());
        }
        None
    }
}

/// What is wrong with a JSON body's top-level fields. Every name is one the spec
/// declares, never one taken from the body, so it is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyFault {
    /// Required fields that are absent or null.
    Missing(Vec<String>),
    /// Fields present with a value of the wrong JSON type, with the kind expected.
    WrongType(Vec<(String, JsonKind)>),
    /// Fields whose value breaks a declared constraint, with the rule in words.
    Rule(Vec<(String, String)>),
}

/// Paths and their methods.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Reads the `paths` of an OpenAPI document. Unparseable input gives an empty
    /// table (no `Allow` headers, no names), never a panic.
    #[must_use]
    pub fn from_spec(spec: &str) -> Self {
        let Ok(doc) = serde_json::from_str::<Value>(spec) else {
            return Self::default();
        };
        let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
            return Self::default();
        };
        let schemas = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object);
        let routes = paths
            .iter()
            .map(|(template, item)| {
                let operations: Vec<(String, &Value)> = item
                    .as_object()
                    .map(|ops| {
                        ops.iter()
                            .filter(|(m, _)| {
                                matches!(
                                    m.as_str(),
                                    "get"
                                        | "put"
                                        | "post"
                                        | "delete"
                                        | "patch"
                                        | "head"
                                        | "options"
                                )
                            })
                            .map(|(m, op)| (m.to_ascii_uppercase(), op))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut methods: Vec<String> = operations.iter().map(|(m, _)| m.clone()).collect();
                // poem answers HEAD wherever it answers GET.
                if methods.iter().any(|m| m == "GET") && !methods.iter().any(|m| m == "HEAD") {
                    methods.push("HEAD".to_owned());
                }
                let bodies = operations
                    .iter()
                    .filter_map(|(m, op)| Some((m.clone(), body_schema(op, schemas)?)))
                    .collect();
                Route {
                    segments: split(template)
                        .map(
                            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                                Some(name) => Segment::Param(name.to_owned()),
                                None => Segment::Literal(s.to_owned()),
                            },
                        )
                        .collect(),
                    methods,
                    bodies,
                }
            })
            .collect();
        Self { routes }
    }

    /// The `Allow` value for a concrete path, if the path is one the API serves.
    #[must_use]
    pub fn allow(&self, path: &str) -> Option<String> {
        self.route(path).map(|route| route.methods.join(", "))
    }

    /// The names of the path parameters of the template `path` matches, in the
    /// order they appear in it. poem-openapi reports a malformed path parameter as
    /// `param0`, `param1`, … in that order; these are the names clients know.
    #[must_use]
    pub fn path_params(&self, path: &str) -> Vec<&str> {
        self.route(path)
            .map(|route| {
                route
                    .segments
                    .iter()
                    .filter_map(|seg| match seg {
                        Segment::Param(name) => Some(name.as_str()),
                        Segment::Literal(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What is wrong with `body`'s top-level fields for `method` on `path`, judged
    /// against the operation's request schema: required fields missing first, else
    /// fields of the wrong type. `None` when the body is not a JSON object, the
    /// operation has no JSON body, or no fault is found at this level.
    #[must_use]
    pub fn body_fault(&self, method: &str, path: &str, body: &[u8]) -> Option<BodyFault> {
        let route = self.route(path)?;
        let (_, schema) = route
            .bodies
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(method))?;
        let value = serde_json::from_slice::<Value>(body).ok()?;
        let object = value.as_object()?;
        let schema = schema.for_body(object)?;
        let missing: Vec<String> = schema
            .required
            .iter()
            .filter(|name| object.get(name.as_str()).is_none_or(Value::is_null))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Some(BodyFault::Missing(missing));
        }
        if let Some(wrong) = self.type_fault(method, path, body) {
            return Some(wrong);
        }
        let broken: Vec<(String, String)> = schema
            .constraints
            .iter()
            .filter_map(|(name, constraints)| {
                let value = object.get(name.as_str())?;
                constraints
                    .broken_rule(value)
                    .map(|rule| (name.clone(), rule))
            })
            .collect();
        (!broken.is_empty()).then_some(BodyFault::Rule(broken))
    }

    /// The body's top-level fields whose JSON type differs from the spec's, before
    /// the operation sees them. poem-openapi reads a JSON number or boolean into a
    /// `String` field (`false` becomes `"false"`) and `null` into an optional one;
    /// the edge refuses both here (`null` only where the spec does not declare the
    /// field `nullable`), so a schema-violating body never reaches an operation.
    #[must_use]
    pub fn type_fault(&self, method: &str, path: &str, body: &[u8]) -> Option<BodyFault> {
        let route = self.route(path)?;
        let (_, schema) = route
            .bodies
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(method))?;
        let value = serde_json::from_slice::<Value>(body).ok()?;
        // A body that is not an object is poem's to refuse, with its own words.
        let schema = schema.for_body(value.as_object()?)?;
        let mut wrong = Vec::new();
        type_faults(&value, &schema.shape, "", &mut wrong);
        (!wrong.is_empty()).then_some(BodyFault::WrongType(wrong))
    }

    /// The route whose template matches `path`; where several do, the one with the
    /// most literal segments (as the router prefers `/things/search` over
    /// `/things/{id}`).
    fn route(&self, path: &str) -> Option<&Route> {
        let parts: Vec<&str> = split(path).collect();
        self.routes
            .iter()
            .filter(|route| {
                route.segments.len() == parts.len()
                    && route
                        .segments
                        .iter()
                        .zip(&parts)
                        .all(|(seg, part)| match seg {
                            Segment::Literal(lit) => lit == part,
                            Segment::Param(_) => !part.is_empty(),
                        })
            })
            .max_by_key(|route| {
                route
                    .segments
                    .iter()
                    .filter(|seg| matches!(seg, Segment::Literal(_)))
                    .count()
            })
    }
}

/// The top level of an operation's `application/json` request body schema.
fn body_schema(operation: &Value, schemas: Option<&Map<String, Value>>) -> Option<BodySchema> {
    let content = operation.pointer("/requestBody/content")?.as_object()?;
    let (_, media) = content
        .iter()
        .find(|(media_type, _)| media_type.starts_with("application/json"))?;
    let schema = resolve(media.get("schema")?, schemas)?;
    let mut body = object_schema(schema, schemas);
    let discriminator = schema.get("discriminator");
    let property = discriminator
        .and_then(|d| d.get("propertyName"))
        .and_then(Value::as_str);
    let mapping = discriminator
        .and_then(|d| d.get("mapping"))
        .and_then(Value::as_object);
    if let (Some(property), Some(mapping)) = (property, mapping) {
        let variants = mapping
            .iter()
            .filter_map(|(value, target)| {
                let name = target.as_str()?.strip_prefix("#/components/schemas/")?;
                let variant = schemas?.get(name)?;
                // poem-openapi writes a variant as `allOf: [{the discriminator},
                // {$ref: the object}]`: the object's fields are the ones to judge.
                let object = variant
                    .get("allOf")
                    .and_then(Value::as_array)
                    .and_then(|all| all.iter().find(|part| part.get("$ref").is_some()))
                    .and_then(|part| resolve(part, schemas))
                    .unwrap_or(variant);
                Some((value.clone(), object_schema(object, schemas)))
            })
            .collect();
        body.variants = Some((property.to_owned(), variants));
    }
    Some(body)
}

/// The fields an object schema requires, their shapes and their constraints.
fn object_schema(schema: &Value, schemas: Option<&Map<String, Value>>) -> BodySchema {
    let required = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let shape = shape_of(schema, schemas, SHAPE_DEPTH);
    let constraints = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .filter_map(|(name, prop)| {
                    resolve(prop, schemas).map(|p| (name.clone(), Constraints::from_schema(p)))
                })
                .collect()
        })
        .unwrap_or_default();
    BodySchema {
        required,
        shape,
        constraints,
        variants: None,
    }
}

/// `schema` with a `$ref` (or poem-openapi's `allOf: [{$ref}, …]` wrapper)
/// followed to `components/schemas`.
fn resolve<'a>(schema: &'a Value, schemas: Option<&'a Map<String, Value>>) -> Option<&'a Value> {
    let reference = schema.get("$ref").or_else(|| {
        schema
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|all| all.first())
            .and_then(|first| first.get("$ref"))
    });
    match reference {
        Some(reference) => {
            let name = reference.as_str()?.strip_prefix("#/components/schemas/")?;
            schemas?.get(name)
        }
        None => Some(schema),
    }
}

/// How deep [`Shape`]s follow nested objects and arrays (and so the end of any
/// recursive schema).
const SHAPE_DEPTH: u8 = 8;

/// The JSON types a value must have, read from the spec: its own kind and, for
/// arrays and objects, its parts'.
#[derive(Debug, Clone, Default)]
struct Shape {
    kind: Option<JsonKind>,
    items: Option<Box<Shape>>,
    fields: Vec<Field>,
}

/// One declared property of an object.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    shape: Shape,
    /// Declared `nullable`: otherwise the field may be absent, never `null`.
    nullable: bool,
}

fn shape_of(schema: &Value, schemas: Option<&Map<String, Value>>, depth: u8) -> Shape {
    let resolved = resolve(schema, schemas).unwrap_or(schema);
    let kind = kind_of(resolved);
    let Some(depth) = depth.checked_sub(1) else {
        return Shape {
            kind,
            ..Shape::default()
        };
    };
    let items = resolved
        .get("items")
        .map(|items| Box::new(shape_of(items, schemas, depth)));
    let fields = resolved
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, prop)| {
                    let flag = |v: &Value| v.get("nullable").and_then(Value::as_bool);
                    Field {
                        name: name.clone(),
                        shape: shape_of(prop, schemas, depth),
                        nullable: flag(prop)
                            .or_else(|| resolve(prop, schemas).and_then(flag))
                            .unwrap_or(false),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Shape {
        kind,
        items,
        fields,
    }
}

/// Collects, into `out`, the spec names (`credentials[].title`) of the parts of
/// `value` whose JSON type `shape` does not allow, each once. Names come from the
/// spec, never from the value.
fn type_faults(value: &Value, shape: &Shape, at: &str, out: &mut Vec<(String, JsonKind)>) {
    let mut push = |name: String, kind: JsonKind| {
        if !out.iter().any(|(seen, _)| *seen == name) {
            out.push((name, kind));
        }
    };
    if let Some(kind) = shape.kind
        && !kind.admits(value)
    {
        push(at.to_owned(), kind);
        return;
    }
    if let (Some(items), Some(array)) = (&shape.items, value.as_array()) {
        let at = format!("{at}[]");
        for item in array {
            type_faults(item, items, &at, out);
        }
    }
    if let Some(object) = value.as_object() {
        for field in &shape.fields {
            let Some(inner) = object.get(&field.name) else {
                continue;
            };
            let name = if at.is_empty() {
                field.name.clone()
            } else {
                format!("{at}.{}", field.name)
            };
            match (inner.is_null(), field.shape.kind) {
                (true, Some(kind)) if !field.nullable => {
                    if !out.iter().any(|(seen, _)| *seen == name) {
                        out.push((name, kind));
                    }
                }
                (true, _) => {}
                (false, _) => type_faults(inner, &field.shape, &name, out),
            }
        }
    }
}

fn kind_of(schema: &Value) -> Option<JsonKind> {
    JsonKind::from_schema_type(schema.get("type")?.as_str()?)
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.trim_matches('/').split('/').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_the_methods_of_the_matching_template() {
        let table = RouteTable::from_spec(
            r#"{"paths":{"/v1/things/{id}":{"get":{},"delete":{}},"/healthz":{"get":{}}}}"#,
        );
        assert_eq!(
            table.allow("/v1/things/42").as_deref(),
            Some("DELETE, GET, HEAD")
        );
        assert_eq!(table.allow("/healthz").as_deref(), Some("GET, HEAD"));
        assert_eq!(table.allow("/v1/things"), None);
        assert_eq!(RouteTable::from_spec("not json").allow("/healthz"), None);
    }

    #[test]
    fn literal_segments_beat_parameters() {
        let table = RouteTable::from_spec(
            r#"{"paths":{"/v1/things/{id}":{"get":{}},"/v1/things/search":{"post":{}}}}"#,
        );
        assert_eq!(table.allow("/v1/things/search").as_deref(), Some("POST"));
        assert_eq!(table.allow("/v1/things/7").as_deref(), Some("GET, HEAD"));
    }

    #[test]
    fn path_parameters_are_named_in_template_order() {
        let table = RouteTable::from_spec(
            r#"{"paths":{"/v1/orgs/{org_id}/things/{thing_id}":{"get":{}}}}"#,
        );
        assert_eq!(
            table.path_params("/v1/orgs/a/things/b"),
            ["org_id", "thing_id"]
        );
        assert!(table.path_params("/v1/elsewhere").is_empty());
    }

    const SPEC: &str = r##"{
        "paths": {"/v1/things": {"post": {"requestBody": {"content": {
            "application/json; charset=utf-8": {"schema": {"$ref": "#/components/schemas/NewThing"}}
        }}}}},
        "components": {"schemas": {
            "NewThing": {"type": "object", "required": ["name", "count"], "properties": {
                "name": {"type": "string"},
                "count": {"type": "integer", "format": "uint32"},
                "kind": {"allOf": [{"$ref": "#/components/schemas/Kind"}, {"description": "d"}]},
                "note": {"type": "string"},
                "memo": {"type": "string", "nullable": true},
                "parts": {"type": "array", "items": {"$ref": "#/components/schemas/Part"}}
            }},
            "Part": {"type": "object", "properties": {"label": {"type": "string"}}},
            "Kind": {"type": "string", "enum": ["a", "b"]}
        }}
    }"##;

    #[test]
    fn body_faults_name_the_spec_fields_never_the_body() {
        let table = RouteTable::from_spec(SPEC);
        let fault = |body: &str| table.body_fault("POST", "/v1/things", body.as_bytes());
        assert_eq!(
            fault(r#"{"name":"x"}"#),
            Some(BodyFault::Missing(vec!["count".to_owned()]))
        );
        assert_eq!(
            fault(r#"{"name":null,"count":1}"#),
            Some(BodyFault::Missing(vec!["name".to_owned()]))
        );
        assert_eq!(
            fault(r#"{"name":"x","count":"F32.1","kind":3,"secret-key":1}"#),
            Some(BodyFault::WrongType(vec![
                ("count".to_owned(), JsonKind::Integer),
                ("kind".to_owned(), JsonKind::String),
            ]))
        );
        // An optional field may be absent, but `null` only where declared nullable.
        assert_eq!(
            fault(r#"{"name":"x","count":1,"note":null}"#),
            Some(BodyFault::WrongType(vec![(
                "note".to_owned(),
                JsonKind::String
            )]))
        );
        assert_eq!(fault(r#"{"name":"x","count":1,"memo":null}"#), None);
        assert_eq!(fault(r#"{"name":"x","count":1}"#), None);
        // To any depth, named by the spec's path, once per name.
        assert_eq!(
            fault(r#"{"name":"x","count":1,"parts":[{"label":false},{"label":2},{"label":"ok"}]}"#),
            Some(BodyFault::WrongType(vec![(
                "parts[].label".to_owned(),
                JsonKind::String
            )]))
        );
        assert_eq!(
            fault(r#"{"name":"x","count":1,"parts":[{"label":null}]}"#),
            Some(BodyFault::WrongType(vec![(
                "parts[].label".to_owned(),
                JsonKind::String
            )]))
        );
        assert_eq!(
            fault(r#"{"name":"x","count":1,"parts":[{"label":"a"}]}"#),
            None
        );
        assert_eq!(fault(r#"{"name":"#), None);
        assert_eq!(fault("[]"), None);
        assert_eq!(table.body_fault("PUT", "/v1/things", br#"{}"#), None);
    }

    #[test]
    fn a_discriminated_union_is_judged_by_the_variant_it_names() {
        let spec = r##"{
            "paths": {"/v1/records": {"post": {"requestBody": {"content": {
                "application/json; charset=utf-8": {"schema": {"$ref": "#/components/schemas/Input"}}}}}}},
            "components": {"schemas": {
                "Input": {"oneOf": [{"$ref": "#/components/schemas/Input_Note"}],
                    "discriminator": {"propertyName": "kind",
                        "mapping": {"note": "#/components/schemas/Input_Note"}}},
                "Input_Note": {"allOf": [
                    {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string"}}},
                    {"$ref": "#/components/schemas/Note"}]},
                "Note": {"type": "object", "required": ["text"],
                    "properties": {"text": {"type": "string", "maxLength": 3},
                        "pages": {"type": "integer"}}}
            }}
        }"##;
        let table = RouteTable::from_spec(spec);
        let fault = |body: &str| table.body_fault("POST", "/v1/records", body.as_bytes());
        assert_eq!(
            fault(r#"{"kind": "note"}"#),
            Some(BodyFault::Missing(vec!["text".to_owned()]))
        );
        assert!(matches!(
            fault(r#"{"kind": "note", "text": "ab", "pages": "x"}"#),
            Some(BodyFault::WrongType(fields)) if fields[0].0 == "pages"
        ));
        assert!(matches!(
            fault(r#"{"kind": "note", "text": "abcd"}"#),
            Some(BodyFault::Rule(rules)) if rules[0].0 == "text"
        ));
        assert_eq!(fault(r#"{"kind": "note", "text": "abc"}"#), None);
        assert_eq!(
            fault(r#"{"kind": "other", "text": "abcd"}"#),
            None,
            "poem's to refuse"
        );
    }
}
