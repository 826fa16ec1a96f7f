//! A parser for the query texts clients send, straight into async-graphql's own document
//! types. async-graphql's parser (pest, a generated parser that backtracks and tracks call
//! depth) took a sixth of the CPU of a doetank query asked in a text the server had not seen
//! (perf, 64 connections); this one reads the text once, byte by byte.
//!
//! It accepts only what async-graphql's grammar accepts, and gives up (`None`) on everything
//! unusual: a syntax error, a block string, a `\u` escape, deep nesting, a keyword run into a
//! name. async-graphql's parser then has the last word, with its own error messages. The tests
//! hold every document it does give to be the one async-graphql's parser gives, positions
//! included (validation errors point at them).

use std::collections::HashMap;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, Field, FragmentDefinition, FragmentSpread,
    InlineFragment, OperationDefinition, OperationType, Selection, SelectionSet, Type, TypeCondition,
    VariableDefinition,
};
use async_graphql::{Name, Number, Pos, Positioned};
// The parser's values may hold variables: not `async_graphql::Value`, which is the constant kind.
use async_graphql_value::Value;

/// Nesting beyond which the text is left to async-graphql's parser (which has limits of its own).
const MAX_DEPTH: usize = 32;

/// The document `text` holds, or `None` where async-graphql's parser should decide.
pub fn parse(text: &str) -> Option<ExecutableDocument> {
    Parser::new(text).document()
}

/// Where the parser is, and the line and column of the last position asked for (positions are
/// asked for in the order of the text, so each byte is counted once).
struct Parser<'a> {
    text: &'a str,
    at: usize,
    counted: usize,
    line: usize,
    column: usize,
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The grammar's WHITESPACE: space, comma, tab, line terminators, and the byte-order mark.
fn whitespace_len(rest: &[u8]) -> usize {
    match rest {
        [b' ' | b',' | b'\t' | b'\r' | b'\n', ..] => 1,
        [0xEF, 0xBB, 0xBF, ..] => 3,
        _ => 0,
    }
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser { text, at: 0, counted: 0, line: 1, column: 1 }
    }

    fn rest(&self) -> &'a [u8] {
        &self.text.as_bytes()[self.at..]
    }

    fn peek(&self) -> Option<u8> {
        self.rest().first().copied()
    }

    /// The position of the byte the parser is at, counted as async-graphql counts it: columns in
    /// characters, `\r` back to column 1 on the same line, `\n` to the next line.
    fn pos(&mut self) -> Pos {
        for &b in &self.text.as_bytes()[self.counted..self.at] {
            match b {
                b'\r' => self.column = 1,
                b'\n' => {
                    self.line += 1;
                    self.column = 1;
                }
                // UTF-8 continuation bytes belong to the character before them.
                0x80..=0xBF => {}
                _ => self.column += 1,
            }
        }
        self.counted = self.at;
        Pos { line: self.line, column: self.column }
    }

    /// Skips whitespace and comments.
    fn skip_ignored(&mut self) {
        loop {
            let rest = self.rest();
            let n = whitespace_len(rest);
            if n > 0 {
                self.at += n;
            } else if rest.first() == Some(&b'#') {
                let line = rest.iter().position(|&b| b == b'\n' || b == b'\r').unwrap_or(rest.len());
                self.at += line;
            } else {
                return;
            }
        }
    }

    /// Consumes `byte` and what is ignored after it.
    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| {
            self.at += 1;
            self.skip_ignored();
        })
    }

    /// A whole name, without what follows it.
    fn raw_name(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        if !rest.first().copied().is_some_and(is_name_start) {
            return None;
        }
        let len = rest.iter().position(|&b| !is_name_byte(b)).unwrap_or(rest.len());
        let name = &self.text[self.at..self.at + len];
        self.at += len;
        Some(name)
    }

    fn name(&mut self) -> Option<Positioned<Name>> {
        let pos = self.pos();
        let name = self.raw_name()?;
        self.skip_ignored();
        Some(Positioned::new(Name::new(name), pos))
    }

    fn document(mut self) -> Option<ExecutableDocument> {
        self.skip_ignored();
        let mut operations: Option<DocumentOperations> = None;
        let mut fragments = HashMap::new();
        while self.at < self.text.len() {
            let pos = self.pos();
            if self.peek() == Some(b'{') {
                let selection_set = self.selection_set(0)?;
                let operation = OperationDefinition {
                    ty: OperationType::Query,
                    variable_definitions: Vec::new(),
                    directives: Vec::new(),
                    selection_set,
                };
                // A second operation beside an anonymous one is an error async-graphql words.
                if operations.is_some() {
                    return None;
                }
                operations = Some(DocumentOperations::Single(Positioned::new(operation, pos)));
                continue;
            }
            let keyword = self.raw_name()?;
            self.skip_ignored();
            let ty = match keyword {
                "query" => OperationType::Query,
                "mutation" => OperationType::Mutation,
                "subscription" => OperationType::Subscription,
                "fragment" => {
                    let name = self.name()?;
                    let type_condition = self.type_condition()?;
                    let directives = self.directives()?;
                    let selection_set = self.selection_set(0)?;
                    let fragment = FragmentDefinition { type_condition, directives, selection_set };
                    if fragments.insert(name.node, Positioned::new(fragment, pos)).is_some() {
                        return None;
                    }
                    continue;
                }
                _ => return None,
            };
            let name = if self.peek().is_some_and(is_name_start) { Some(self.name()?) } else { None };
            let variable_definitions =
                if self.peek() == Some(b'(') { self.variable_definitions()? } else { Vec::new() };
            let directives = self.directives()?;
            let selection_set = self.selection_set(0)?;
            let operation = Positioned::new(
                OperationDefinition { ty, variable_definitions, directives, selection_set },
                pos,
            );
            match (&mut operations, name) {
                (None, None) => operations = Some(DocumentOperations::Single(operation)),
                (None, Some(name)) => {
                    operations = Some(DocumentOperations::Multiple(HashMap::from([(name.node, operation)])))
                }
                (Some(DocumentOperations::Multiple(named)), Some(name)) => {
                    if named.insert(name.node, operation).is_some() {
                        return None;
                    }
                }
                _ => return None,
            }
        }
        Some(ExecutableDocument { operations: operations?, fragments })
    }

    /// `on Type`, with whitespace (not comments) between, as the grammar has it.
    fn type_condition(&mut self) -> Option<Positioned<TypeCondition>> {
        let pos = self.pos();
        if self.raw_name()? != "on" || whitespace_len(self.rest()) == 0 {
            return None;
        }
        loop {
            match whitespace_len(self.rest()) {
                0 => break,
                n => self.at += n,
            }
        }
        let on = self.name()?;
        Some(Positioned::new(TypeCondition { on }, pos))
    }

    fn variable_definitions(&mut self) -> Option<Vec<Positioned<VariableDefinition>>> {
        self.eat(b'(')?;
        let mut out = Vec::new();
        while self.peek() == Some(b'$') {
            let pos = self.pos();
            self.eat(b'$')?;
            let name = self.name()?;
            self.eat(b':')?;
            let var_type = self.var_type()?;
            let directives = self.directives()?;
            let default_value = if self.peek() == Some(b'=') {
                self.eat(b'=')?;
                let value = self.value(0)?;
                Some(Positioned::new(value.node.into_const()?, value.pos))
            } else {
                None
            };
            out.push(Positioned::new(VariableDefinition { name, var_type, directives, default_value }, pos));
        }
        self.eat(b')')?;
        Some(out)
    }

    /// A type is one token in the grammar (`[ID!]!`, nothing ignored inside).
    fn var_type(&mut self) -> Option<Positioned<Type>> {
        let pos = self.pos();
        let start = self.at;
        self.type_token(0)?;
        let ty = Type::new(&self.text[start..self.at])?;
        self.skip_ignored();
        Some(Positioned::new(ty, pos))
    }

    fn type_token(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        if self.peek() == Some(b'[') {
            self.at += 1;
            self.type_token(depth + 1)?;
            (self.peek() == Some(b']')).then(|| self.at += 1)?;
        } else {
            self.raw_name()?;
        }
        if self.peek() == Some(b'!') {
            self.at += 1;
        }
        Some(())
    }

    fn directives(&mut self) -> Option<Vec<Positioned<Directive>>> {
        let mut out = Vec::new();
        while self.peek() == Some(b'@') {
            let pos = self.pos();
            self.eat(b'@')?;
            let name = self.name()?;
            let arguments = if self.peek() == Some(b'(') { self.arguments()? } else { Vec::new() };
            out.push(Positioned::new(Directive { name, arguments }, pos));
        }
        Some(out)
    }

    /// `(name: value ...)`, at least one.
    fn arguments(&mut self) -> Option<Vec<(Positioned<Name>, Positioned<Value>)>> {
        self.eat(b'(')?;
        let mut out = Vec::new();
        while self.peek() != Some(b')') {
            let name = self.name()?;
            self.eat(b':')?;
            out.push((name, self.value(0)?));
        }
        if out.is_empty() {
            return None;
        }
        self.eat(b')')?;
        Some(out)
    }

    fn selection_set(&mut self, depth: usize) -> Option<Positioned<SelectionSet>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let pos = self.pos();
        self.eat(b'{')?;
        let mut items = Vec::new();
        while self.peek() != Some(b'}') {
            items.push(self.selection(depth)?);
        }
        if items.is_empty() {
            return None;
        }
        self.eat(b'}')?;
        Some(Positioned::new(SelectionSet { items }, pos))
    }

    fn selection(&mut self, depth: usize) -> Option<Positioned<Selection>> {
        let pos = self.pos();
        if !self.rest().starts_with(b"...") {
            let field = self.field(depth)?;
            return Some(Positioned::new(Selection::Field(field), pos));
        }
        self.at += 3;
        self.skip_ignored();
        let rest = self.rest();
        let type_condition = if rest.starts_with(b"on") && rest.get(2).is_some_and(|&b| !is_name_byte(b)) {
            Some(self.type_condition()?)
        } else {
            None
        };
        if type_condition.is_none() && self.peek().is_some_and(is_name_start) {
            let fragment_name = self.name()?;
            let directives = self.directives()?;
            let spread = Positioned::new(FragmentSpread { fragment_name, directives }, pos);
            return Some(Positioned::new(Selection::FragmentSpread(spread), pos));
        }
        let directives = self.directives()?;
        let selection_set = self.selection_set(depth + 1)?;
        let fragment = Positioned::new(InlineFragment { type_condition, directives, selection_set }, pos);
        Some(Positioned::new(Selection::InlineFragment(fragment), pos))
    }

    fn field(&mut self, depth: usize) -> Option<Positioned<Field>> {
        let pos = self.pos();
        let first = self.name()?;
        let (alias, name) = if self.peek() == Some(b':') {
            self.eat(b':')?;
            (Some(first), self.name()?)
        } else {
            (None, first)
        };
        let arguments = if self.peek() == Some(b'(') { self.arguments()? } else { Vec::new() };
        let directives = self.directives()?;
        let selection_set =
            if self.peek() == Some(b'{') { self.selection_set(depth + 1)? } else { Positioned::default() };
        Some(Positioned::new(Field { alias, name, arguments, directives, selection_set }, pos))
    }

    fn value(&mut self, depth: usize) -> Option<Positioned<Value>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let pos = self.pos();
        let value = match self.peek()? {
            b'$' => {
                self.eat(b'$')?;
                Value::Variable(self.name()?.node)
            }
            b'"' => Value::String(self.string()?),
            b'-' | b'0'..=b'9' => Value::Number(self.number()?),
            b'[' => {
                self.eat(b'[')?;
                let mut items = Vec::new();
                while self.peek() != Some(b']') {
                    items.push(self.value(depth + 1)?.node);
                }
                self.eat(b']')?;
                Value::List(items)
            }
            b'{' => {
                self.eat(b'{')?;
                let mut fields = IndexMap::new();
                while self.peek() != Some(b'}') {
                    let name = self.name()?;
                    self.eat(b':')?;
                    fields.insert(name.node, self.value(depth + 1)?.node);
                }
                self.eat(b'}')?;
                Value::Object(fields)
            }
            _ => {
                let word = self.raw_name()?;
                self.skip_ignored();
                match word {
                    "true" => Value::Boolean(true),
                    "false" => Value::Boolean(false),
                    "null" => Value::Null,
                    // The grammar reads `trueish` as `true` and then `ish`: left to it.
                    _ if ["true", "false", "null"].iter().any(|w| word.starts_with(w)) => return None,
                    _ => Value::Enum(Name::new(word)),
                }
            }
        };
        Some(Positioned::new(value, pos))
    }

    /// `"..."` with the escapes the grammar knows (no `\u`, no line breaks, no block strings).
    fn string(&mut self) -> Option<String> {
        if self.rest().starts_with(b"\"\"\"") {
            return None;
        }
        self.at += 1;
        let mut out = String::new();
        loop {
            let rest = self.rest();
            let plain = rest.iter().position(|&b| matches!(b, b'"' | b'\\' | b'\r' | b'\n'))?;
            out.push_str(&self.text[self.at..self.at + plain]);
            self.at += plain;
            match self.rest() {
                [b'"', ..] => break,
                [b'\\', escaped, ..] => {
                    out.push(match escaped {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        _ => return None,
                    });
                    self.at += 2;
                }
                _ => return None,
            }
        }
        self.at += 1;
        self.skip_ignored();
        Some(out)
    }

    /// An int or a float as the grammar has them (no leading zeros, not run into a name).
    fn number(&mut self) -> Option<Number> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let n = p.rest().iter().position(|b| !b.is_ascii_digit()).unwrap_or(p.rest().len());
            p.at += n;
            n
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => {
                self.at += 1;
                if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    return None;
                }
            }
            b'1'..=b'9' => {
                digits(self);
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        if self.peek().is_some_and(|b| is_name_start(b) || b == b'.') {
            return None;
        }
        let number = self.text[start..self.at].parse().ok()?;
        self.skip_ignored();
        Some(number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A document in a form that does not depend on the order of its hash maps.
    fn canonical(document: &ExecutableDocument) -> String {
        let operations = match &document.operations {
            DocumentOperations::Single(operation) => format!("{operation:?}"),
            DocumentOperations::Multiple(named) => {
                let mut named: Vec<_> = named.iter().map(|(k, v)| format!("{k}: {v:?}")).collect();
                named.sort();
                named.join("\n")
            }
        };
        let mut fragments: Vec<_> = document.fragments.iter().map(|(k, v)| format!("{k}: {v:?}")).collect();
        fragments.sort();
        format!("{operations}\n{}", fragments.join("\n"))
    }

    /// What this parser gives is what async-graphql's gives; returns whether it gave anything.
    fn agrees(text: &str) -> bool {
        let Some(ours) = parse(text) else { return false };
        let theirs = async_graphql::parser::parse_query(text)
            .unwrap_or_else(|e| panic!("we parsed what async-graphql rejects ({e}): {text:?}"));
        assert_eq!(canonical(&ours), canonical(&theirs), "for {text:?}");
        true
    }

    const UNDERSTOOD: &[&str] = &[
        "{ __typename }",
        "query($id: ID!) { doetank(id: $id) { name status currentPhase lead { name } coach { name } \
         members { role member { name organisation } } phases { phase completedAt summary } lessons { kind title tags } } }",
        "{ lessons(filter: { search: \"werkgevers koppels\" }, first: 20) { totalCount edges { node { title rank doetank { name } } } } } # 17",
        "query Q($a: [Int!]! = [1, -2, 3.5e3, 0], $b: Filter = {x: \"y\", z: [A, B]}, $c: String = null) @dir(a: 1) { f(a: $a, b: $b) }",
        "mutation M { form(input: {name: \"Één \\\"team\\\" \\\\ \\/ \\b\\f\\n\\r\\t\", members: []}) { id } }\nsubscription S { events { position } }",
        "\u{feff}{\r\n  a: doetank(id: \"x\") @include(if: true) @skip(if: false) {\r\n    ...F\n    ... on Doetank { name }\n    ... @include(if: $v) { id }\n    ... { id }\n  }\n}\nfragment F on Doetank @d { id, name, }",
        "# a comment first\n{ a # after a field\n b(x: 1.0, y: -0, z: 0.5E-3, e: ENUM_VALUE, n: null, t: true, f: false) }",
        "query { a(s: \"ü 字 😀 in a string\") b } # ü 字 😀",
        "{ a\r b\r\n c\n d }",
        "query ($x: Int) { a }",
        "query() { a }",
        "{ ...onion ... on\tT { a } ..., on, T { b } }",
        "{ query fragment on mutation true: null false(true: false) }",
        "query Q { a } query R { b } fragment A on T { a } fragment B on U { b }",
        "{ a(o: {k: 1, k: 2, j: [[[]]]}) }",
    ];

    #[test]
    fn the_texts_clients_send_parse_as_async_graphql_parses_them() {
        for text in UNDERSTOOD {
            assert!(agrees(text), "left to async-graphql: {text:?}");
        }
    }

    #[test]
    fn what_is_wrong_or_unusual_is_left_to_async_graphql() {
        for text in [
            "",
            "   # only a comment",
            "{}",
            "{ a",
            "{ a(x:) }",
            "{ a() }",
            "{ a(x: 01) }",
            "{ a(x: 1.) }",
            "{ a(x: 1a) }",
            "{ a(x: -) }",
            "{ a(x: trueish) }",
            "{ a(x: \"line\nbreak\") }",
            "{ a(x: \"\\u00e9\") }",
            "{ a(x: \"\"\"block\"\"\") }",
            "{ a(x: \"open) }",
            "query($a: Int = $b) { a }",
            "query($a: [ Int ]) { a }",
            "queryX { a }",
            "fragmentF on T { a }",
            "{ a } { b }",
            "query A { a } query A { b }",
            "{ a } query B { b }",
            "fragment F on T { a } fragment F on T { b }",
            "fragment F on T { a }",
            "{ ... on #c\n T { a } }",
            "{ ... on }",
            "{ a } }",
            &format!("{}{}", "{ a ".repeat(40), "}".repeat(40)),
            &format!("{{ a(x: {}{}) }}", "[".repeat(40), "]".repeat(40)),
        ] {
            assert!(!agrees(text), "parsed what it should leave alone: {text:?}");
        }
    }

    fn ignored() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![Just(" "), Just(","), Just("\n"), Just("\r\n"), Just("\t"), Just("# c\n")],
            0..3,
        )
        .prop_map(|parts| parts.concat())
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z_][a-zA-Z0-9_]{0,6}"
    }

    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            name(),
            name().prop_map(|n| format!("${n}")),
            any::<i32>().prop_map(|n| n.to_string()),
            (any::<i16>(), 0u16..999).prop_map(|(a, b)| format!("{a}.{b}")),
            "[a-zé字 \\\\\"]{0,6}".prop_map(|s| format!("{s:?}")),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(" "))),
                prop::collection::vec((name(), inner), 0..3).prop_map(|fields| {
                    let fields: Vec<_> = fields.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    format!("{{{}}}", fields.join(", "))
                }),
            ]
        })
    }

    fn selection_set() -> impl Strategy<Value = String> {
        let field = (
            prop::option::of(name()),
            name(),
            prop::collection::vec((name(), value()), 0..2),
            prop::option::of(name()),
            ignored(),
        )
            .prop_map(|(alias, name, args, directive, gap)| {
                let mut out = alias.map(|a| format!("{a}:{gap}")).unwrap_or_default() + &name;
                if !args.is_empty() {
                    let args: Vec<_> = args.into_iter().map(|(k, v)| format!("{k}:{gap}{v}")).collect();
                    out += &format!("({})", args.join(","));
                }
                if let Some(d) = directive {
                    out += &format!(" @{d}(if: true)");
                }
                out
            })
            .boxed();
        let head = field.clone();
        field.prop_recursive(3, 16, 3, move |inner| {
            (head.clone(), prop::collection::vec(inner, 1..3), ignored(), any::<bool>()).prop_map(
                |(head, items, gap, inline)| {
                    let body = format!("{{{gap}{}{gap}}}", items.join(&format!("{gap} ")));
                    if inline {
                        format!("{head} ... on T{gap}{body}")
                    } else {
                        format!("{head}{gap}{body}")
                    }
                },
            )
        })
    }

    proptest! {
        #[test]
        fn generated_documents_parse_as_async_graphql_parses_them(
            selections in prop::collection::vec(selection_set(), 1..3),
            gap in ignored(),
            named in any::<bool>(),
        ) {
            let text = if named {
                format!("{gap}query Q($v: [ID!] = [1]){gap}{{{gap}{}{gap}}}{gap}", selections.join(" "))
            } else {
                format!("{gap}{{{}}}", selections.join(&format!(" {gap}")))
            };
            prop_assert!(agrees(&text), "left to async-graphql: {text:?}");
        }

        #[test]
        fn a_damaged_text_is_parsed_as_async_graphql_parses_it_or_left_to_it(
            which in 0..UNDERSTOOD.len(),
            cut in any::<prop::sample::Index>(),
            insert in prop::option::of(prop_oneof![Just("{"), Just("}"), Just("("), Just(":"), Just("$"), Just("\""), Just("..."), Just("@"), Just("1"), Just("#"), Just("on ")]),
            remove in 0usize..3,
        ) {
            let text = UNDERSTOOD[which];
            let at = cut.index(text.len() + 1);
            let at = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            let end = (at + remove..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
            let damaged = format!("{}{}{}", &text[..at], insert.unwrap_or(""), &text[end..]);
            // Agrees, or leaves it alone; it must never give a document async-graphql would not.
            agrees(&damaged);
        }
    }
}
