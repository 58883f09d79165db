//! GGUF header and metadata reader: validity, architecture, layers, KV shape, quant.
//!
//! Reads only the header, the metadata and the tensor table — never tensor data — so it
//! is cheap on a 20 GB file. It reads files from other programs' folders, so every length
//! is checked against the bytes left in the file before anything is allocated: a fake or
//! damaged file gives an error, never a panic or an unbounded allocation. A file whose
//! tensors end past its end is reported as truncated before any server is started.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::ErrorCode;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// Longest string value we keep in memory (chat templates are a few KB; this is generous).
const MAX_KEPT_STRING: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("The model file {path} does not exist. Check the path, or pick the model again.")]
    NotFound { path: PathBuf },
    #[error("{path} is not a GGUF model file (it starts with {found:?} instead of \"GGUF\"). Kindling runs GGUF models; download the .gguf version of this model.")]
    NotGguf { path: PathBuf, found: String },
    #[error("The model file {path} is incomplete: it has {} but its contents need {}. The download was probably cut short; download it again.", crate::units::format_bytes(*.actual), crate::units::format_bytes(*.expected))]
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{path} is not a valid model file: {reason}. If it was downloaded, download it again; otherwise pick another model.")]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "Kindling could not read the model file {path}: {source}. Check that the file is readable."
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl GgufError {
    pub fn code(&self) -> ErrorCode {
        match self {
            GgufError::NotFound { .. } => ErrorCode::ModelNotFound,
            GgufError::NotGguf { .. } => ErrorCode::ModelNotGguf,
            GgufError::Truncated { .. } => ErrorCode::ModelTruncated,
            GgufError::Malformed { .. } | GgufError::Io { .. } => ErrorCode::ModelUnreadable,
        }
    }
}

/// A metadata value. Arrays keep only their length (token lists are huge and unneeded).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MetaValue {
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array { len: u64 },
}

impl MetaValue {
    fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::UInt(v) => Some(v),
            MetaValue::Int(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }
}

/// What Kindling needs to know about a model file, read from its header.
#[derive(Debug, Clone, Serialize)]
pub struct GgufInfo {
    pub version: u32,
    pub file_size: u64,
    pub architecture: Option<String>,
    pub name: Option<String>,
    /// Quantization as llama.cpp names it, e.g. `Q4_K_M`.
    pub file_type: Option<String>,
    pub parameter_count: u64,
    pub tensor_count: u64,
    /// Bytes of tensor data (the weights read per token for a dense model).
    pub tensor_bytes: u64,
    /// Bytes of tensors llama.cpp keeps in main memory whatever is offloaded: per-layer
    /// token embeddings (Gemma's E models), looked up per token rather than read whole.
    #[serde(default)]
    pub host_only_bytes: u64,
    /// Bytes of the repeating layers' tensors (`blk.N.*`): what a split spreads over
    /// several machines; the rest (embeddings, output) stays where the model is served.
    #[serde(default)]
    pub layer_bytes: u64,
    /// Bytes of the output head (`output.weight`; the token embeddings again when the
    /// model ties them): llama.cpp puts it with the last offloaded layers.
    #[serde(default)]
    pub output_bytes: u64,
    /// Whether the output head is a tensor of its own (else the embeddings, tied).
    #[serde(default)]
    pub output_separate: bool,
    pub block_count: Option<u64>,
    pub context_length: Option<u64>,
    pub embedding_length: Option<u64>,
    pub head_count: Option<u64>,
    pub head_count_kv: Option<u64>,
    pub key_length: Option<u64>,
    pub value_length: Option<u64>,
    pub expert_count: Option<u64>,
    pub has_chat_template: bool,
    pub tokenizer: Option<String>,
    pub vocab_size: Option<u64>,
    /// All scalar metadata (arrays by length), for display and later use.
    #[serde(skip)]
    pub metadata: BTreeMap<String, MetaValue>,
}

/// Reads and validates the header of the GGUF file at `path`.
pub fn inspect(path: &Path) -> Result<GgufInfo, GgufError> {
    let io = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            GgufError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            GgufError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(GgufError::NotGguf {
            path: path.to_path_buf(),
            found: "a folder".into(),
        });
    }
    parse(BufReader::with_capacity(1 << 16, file), meta.len()).map_err(|e| e.at(path))
}

/// A parse failure before it is tied to a path.
#[derive(Debug)]
pub enum ParseError {
    NotGguf(String),
    Truncated { expected: u64, actual: u64 },
    Malformed(String),
    Io(std::io::Error),
}

impl ParseError {
    fn at(self, path: &Path) -> GgufError {
        let path = path.to_path_buf();
        match self {
            ParseError::NotGguf(found) => GgufError::NotGguf { path, found },
            ParseError::Truncated { expected, actual } => GgufError::Truncated {
                path,
                expected,
                actual,
            },
            ParseError::Malformed(reason) => GgufError::Malformed { path, reason },
            ParseError::Io(source) => GgufError::Io { path, source },
        }
    }
}

struct Cursor<R> {
    inner: R,
    pos: u64,
    len: u64,
    /// GGUF v1 used 32-bit counts and lengths.
    wide: bool,
}

impl<R: Read> Cursor<R> {
    fn left(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// Fails as truncated when fewer than `n` bytes remain.
    fn need(&self, n: u64) -> Result<(), ParseError> {
        if n > self.left() {
            // A length past any model file is a damaged or fake header, not a download
            // cut short (it was reported as "needs 18446744073709551615 bytes").
            return Err(match self.pos.checked_add(n) {
                Some(expected) if expected <= MAX_PLAUSIBLE_BYTES => ParseError::Truncated {
                    expected,
                    actual: self.len,
                },
                _ => ParseError::Malformed(format!(
                    "its header declares a value longer than any model file ({} in), so it is damaged or not a model",
                    crate::units::format_bytes(self.pos)
                )),
            });
        }
        Ok(())
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], ParseError> {
        self.need(N as u64)?;
        let mut buf = [0u8; N];
        self.inner.read_exact(&mut buf).map_err(ParseError::Io)?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn skip(&mut self, n: u64) -> Result<(), ParseError> {
        self.need(n)?;
        let copied = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink())
            .map_err(ParseError::Io)?;
        if copied != n {
            return Err(ParseError::Truncated {
                expected: self.pos + n,
                actual: self.pos + copied,
            });
        }
        self.pos += n;
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, ParseError> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> Result<u64, ParseError> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    fn count(&mut self) -> Result<u64, ParseError> {
        if self.wide {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    /// A length-prefixed string; longer than `MAX_KEPT_STRING` is skipped and returned empty.
    fn string(&mut self) -> Result<String, ParseError> {
        let n = self.count()?;
        self.need(n)?;
        if n > MAX_KEPT_STRING {
            self.skip(n)?;
            return Ok(String::new());
        }
        let mut buf = vec![0u8; n as usize];
        self.inner.read_exact(&mut buf).map_err(ParseError::Io)?;
        self.pos += n;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    fn value(&mut self, ty: u32, depth: u32) -> Result<MetaValue, ParseError> {
        Ok(match ty {
            0 => MetaValue::UInt(u64::from(self.bytes::<1>()?[0])),
            1 => MetaValue::Int(i64::from(self.bytes::<1>()?[0] as i8)),
            2 => MetaValue::UInt(u64::from(u16::from_le_bytes(self.bytes()?))),
            3 => MetaValue::Int(i64::from(i16::from_le_bytes(self.bytes()?))),
            4 => MetaValue::UInt(u64::from(self.u32()?)),
            5 => MetaValue::Int(i64::from(i32::from_le_bytes(self.bytes()?))),
            6 => MetaValue::Float(f64::from(f32::from_le_bytes(self.bytes()?))),
            7 => MetaValue::Bool(self.bytes::<1>()?[0] != 0),
            8 => MetaValue::Str(self.string()?),
            9 => {
                if depth > 4 {
                    return Err(ParseError::Malformed("arrays nested too deeply".into()));
                }
                let elem = self.u32()?;
                let len = self.count()?;
                match fixed_size(elem) {
                    Some(size) => {
                        self.skip(len.checked_mul(size).ok_or_else(|| {
                            ParseError::Malformed("array length overflows".into())
                        })?)?
                    }
                    None => {
                        // Each element takes at least one byte: a count beyond the bytes
                        // left is a lie, caught before looping over it.
                        self.need(len)?;
                        for _ in 0..len {
                            self.value(elem, depth + 1)?;
                        }
                    }
                }
                MetaValue::Array { len }
            }
            10 => MetaValue::UInt(self.u64()?),
            11 => MetaValue::Int(i64::from_le_bytes(self.bytes()?)),
            12 => MetaValue::Float(f64::from_le_bytes(self.bytes()?)),
            other => {
                return Err(ParseError::Malformed(format!(
                    "{} in, its header holds a value of {}",
                    crate::units::format_bytes(self.pos),
                    small_number(u64::from(other))
                        .map_or("no known kind".into(), |n| format!("an unknown kind ({n})"))
                )))
            }
        })
    }
}

fn fixed_size(ty: u32) -> Option<u64> {
    match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// (elements per block, bytes per block) of a ggml tensor type; `None` for types this
/// version does not know (their size is then not checked).
pub fn ggml_type_block(ty: u32) -> Option<(u64, u64)> {
    Some(match ty {
        0 => (1, 4),
        1 => (1, 2),
        2 => (32, 18),
        3 => (32, 20),
        6 => (32, 22),
        7 => (32, 24),
        8 => (32, 34),
        9 => (32, 36),
        10 => (256, 84),
        11 => (256, 110),
        12 => (256, 144),
        13 => (256, 176),
        14 => (256, 210),
        15 => (256, 292),
        16 => (256, 66),
        17 => (256, 74),
        18 => (256, 98),
        19 => (256, 50),
        20 => (32, 18),
        21 => (256, 110),
        22 => (256, 82),
        23 => (256, 136),
        24 => (1, 1),
        25 => (1, 2),
        26 => (1, 4),
        27 | 28 => (1, 8),
        29 => (256, 56),
        30 => (1, 2),
        34 => (256, 54),
        35 => (256, 66),
        39 => (32, 17),
        _ => return None,
    })
}

/// No model file is anywhere near this large (1 PiB): a header that says so is garbage.
const MAX_PLAUSIBLE_BYTES: u64 = 1 << 50;
/// No tensor has a side this long (the largest are vocabularies of a few hundred thousand).
const MAX_PLAUSIBLE_DIM: u64 = 1 << 26;

/// A number read from a file, when it is small enough to be worth showing a person;
/// a damaged header's 4712128852136459333 is not.
fn small_number(n: u64) -> Option<u64> {
    (n < 1_000_000).then_some(n)
}

/// llama.cpp's name for a `general.file_type` value.
pub fn file_type_name(ft: u64) -> Option<&'static str> {
    Some(match ft {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => return None,
    })
}

/// Parses a GGUF stream of `len` bytes. Pure apart from reading `reader`.
pub fn parse(reader: impl Read, len: u64) -> Result<GgufInfo, ParseError> {
    let mut c = Cursor {
        inner: reader,
        pos: 0,
        len,
        wide: true,
    };
    if len < 4 {
        return Err(ParseError::NotGguf(format!("{len} bytes")));
    }
    let magic = c.bytes::<4>()?;
    if &magic != MAGIC {
        return Err(ParseError::NotGguf(
            String::from_utf8_lossy(&magic).into_owned(),
        ));
    }
    let version = c.u32()?;
    if !(1..=3).contains(&version) {
        return Err(ParseError::Malformed(
            match small_number(u64::from(version)) {
                Some(v) => format!("it is GGUF version {v}, which this Kindling does not read"),
                None => "its version is no GGUF version, so it is damaged or not a model".into(),
            },
        ));
    }
    c.wide = version >= 2;
    let tensor_count = c.count()?;
    let kv_count = c.count()?;

    let mut metadata = BTreeMap::new();
    // Each entry is at least a key length, a type and one byte: a bigger count is a lie.
    c.need(kv_count.saturating_mul(13))?;
    for _ in 0..kv_count {
        let key = c.string()?;
        let ty = c.u32()?;
        let value = c.value(ty, 0)?;
        metadata.insert(key, value);
    }

    let alignment = metadata
        .get("general.alignment")
        .and_then(MetaValue::as_u64)
        .filter(|a| *a > 0 && a.is_power_of_two())
        .unwrap_or(DEFAULT_ALIGNMENT);

    // name (>= 8) + n_dims (4) + type (4) + offset (8): at least 24 bytes per tensor.
    c.need(tensor_count.saturating_mul(24))?;
    let mut parameter_count: u64 = 0;
    let mut data_end: u64 = 0;
    let mut tensor_bytes: u64 = 0;
    let mut host_only_bytes: u64 = 0;
    let mut layer_bytes: u64 = 0;
    let (mut output, mut embeddings): (Option<u64>, u64) = (None, 0);
    for _ in 0..tensor_count {
        let name = c.string()?;
        let n_dims = c.u32()?;
        if n_dims > 8 {
            return Err(ParseError::Malformed(
                "a tensor claims more than 8 dimensions".into(),
            ));
        }
        let mut elements: u64 = 1;
        let mut first_dim = 1;
        for d in 0..n_dims {
            let dim = c.u64()?;
            if dim > MAX_PLAUSIBLE_DIM {
                return Err(ParseError::Malformed(
                    "a tensor claims a side longer than any model's".into(),
                ));
            }
            if d == 0 {
                first_dim = dim;
            }
            elements = elements
                .checked_mul(dim)
                .ok_or_else(|| ParseError::Malformed("tensor size overflows".into()))?;
        }
        let ty = c.u32()?;
        let offset = c.u64()?;
        parameter_count = parameter_count.saturating_add(elements);
        if let Some((block, size)) = ggml_type_block(ty) {
            if first_dim % block != 0 {
                return Err(ParseError::Malformed(format!(
                    "a tensor's row of {first_dim} does not fit blocks of {block}"
                )));
            }
            let bytes = (elements / block).saturating_mul(size);
            tensor_bytes = tensor_bytes.saturating_add(bytes);
            if name.starts_with("per_layer_token_embd") {
                host_only_bytes = host_only_bytes.saturating_add(bytes);
            }
            if name.starts_with("blk.") {
                layer_bytes = layer_bytes.saturating_add(bytes);
            }
            match name.as_str() {
                "output.weight" => output = Some(bytes),
                "token_embd.weight" => embeddings = bytes,
                _ => {}
            }
            data_end = data_end.max(offset.saturating_add(bytes));
        } else {
            data_end = data_end.max(offset.saturating_add(1));
        }
    }
    let data_start = c.pos.div_ceil(alignment).saturating_mul(alignment);
    let expected = data_start.saturating_add(data_end);
    // A header whose tensors end past a petabyte is garbage, not a cut-short download.
    if expected > MAX_PLAUSIBLE_BYTES {
        return Err(ParseError::Malformed(
            "its header places model data further in than any model file reaches".into(),
        ));
    }
    if tensor_count > 0 && expected > len {
        return Err(ParseError::Truncated {
            expected,
            actual: len,
        });
    }

    let arch = match metadata.get("general.architecture") {
        Some(MetaValue::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let arch_u64 = |suffix: &str| {
        arch.as_ref()
            .and_then(|a| metadata.get(&format!("{a}.{suffix}")))
            .and_then(MetaValue::as_u64)
    };
    let string = |key: &str| match metadata.get(key) {
        Some(MetaValue::Str(s)) => Some(s.clone()),
        _ => None,
    };
    Ok(GgufInfo {
        version,
        file_size: len,
        name: string("general.name"),
        file_type: metadata
            .get("general.file_type")
            .and_then(MetaValue::as_u64)
            .map(|ft| file_type_name(ft).map_or_else(|| format!("type {ft}"), str::to_string)),
        parameter_count,
        tensor_count,
        tensor_bytes,
        host_only_bytes,
        layer_bytes,
        output_bytes: output.unwrap_or(embeddings),
        output_separate: output.is_some(),
        block_count: arch_u64("block_count"),
        context_length: arch_u64("context_length"),
        embedding_length: arch_u64("embedding_length"),
        head_count: arch_u64("attention.head_count"),
        head_count_kv: arch_u64("attention.head_count_kv"),
        key_length: arch_u64("attention.key_length"),
        value_length: arch_u64("attention.value_length"),
        expert_count: arch_u64("expert_count"),
        has_chat_template: metadata.contains_key("tokenizer.chat_template"),
        tokenizer: string("tokenizer.ggml.model"),
        vocab_size: match metadata.get("tokenizer.ggml.tokens") {
            Some(MetaValue::Array { len }) => Some(*len),
            _ => None,
        },
        architecture: arch,
        metadata,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a small, valid GGUF v3 file in memory: two F32 tensors and some metadata.
    pub fn tiny_gguf() -> Vec<u8> {
        fn s(out: &mut Vec<u8>, v: &str) {
            out.extend((v.len() as u64).to_le_bytes());
            out.extend(v.as_bytes());
        }
        let mut out = Vec::new();
        out.extend(b"GGUF");
        out.extend(3u32.to_le_bytes());
        out.extend(2u64.to_le_bytes()); // tensors
        out.extend(5u64.to_le_bytes()); // kv
        s(&mut out, "general.architecture");
        out.extend(8u32.to_le_bytes());
        s(&mut out, "llama");
        s(&mut out, "llama.block_count");
        out.extend(4u32.to_le_bytes());
        out.extend(2u32.to_le_bytes());
        s(&mut out, "general.file_type");
        out.extend(4u32.to_le_bytes());
        out.extend(15u32.to_le_bytes());
        s(&mut out, "tokenizer.ggml.tokens");
        out.extend(9u32.to_le_bytes());
        out.extend(8u32.to_le_bytes());
        out.extend(3u64.to_le_bytes());
        for t in ["a", "bb", "ccc"] {
            s(&mut out, t);
        }
        s(&mut out, "tokenizer.ggml.scores");
        out.extend(9u32.to_le_bytes());
        out.extend(6u32.to_le_bytes());
        out.extend(3u64.to_le_bytes());
        out.extend([0u8; 12]);
        // tensor infos: 4x2 f32 at 0 and 8 f32 at 32
        s(&mut out, "a");
        out.extend(2u32.to_le_bytes());
        out.extend(4u64.to_le_bytes());
        out.extend(2u64.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        s(&mut out, "b");
        out.extend(1u32.to_le_bytes());
        out.extend(8u64.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend(32u64.to_le_bytes());
        while out.len() % 32 != 0 {
            out.push(0);
        }
        out.extend([0u8; 64]);
        out
    }

    fn parse_bytes(b: &[u8]) -> Result<GgufInfo, ParseError> {
        parse(b, b.len() as u64)
    }

    #[test]
    fn reads_a_valid_file() {
        let info = parse_bytes(&tiny_gguf()).unwrap();
        assert_eq!(info.architecture.as_deref(), Some("llama"));
        assert_eq!(info.block_count, Some(2));
        assert_eq!(info.file_type.as_deref(), Some("Q4_K_M"));
        assert_eq!(info.vocab_size, Some(3));
        assert_eq!(info.parameter_count, 16);
        assert_eq!(info.tensor_bytes, 64);
        assert!(!info.has_chat_template);
    }

    #[test]
    fn a_gguf_magic_on_a_garbage_header_is_not_a_model_file() {
        // The file: the magic, then 4100 bytes of noise.
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(1u64.to_le_bytes()); // one tensor
        b.extend(0u64.to_le_bytes()); // no metadata
        b.extend(1u64.to_le_bytes());
        b.push(b'w');
        b.extend(1u32.to_le_bytes());
        b.extend(32u64.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(0x6940_6940_6940_6940u64.to_le_bytes()); // the data's offset
        b.resize(4104, 0x40);
        let err = parse_bytes(&b).unwrap_err();
        assert!(matches!(err, ParseError::Malformed(_)), "{err:?}");
        let words = err.at(Path::new("/m/x.gguf")).to_string();
        assert!(words.contains("is not a valid model file"), "{words}");
        assert!(!words.contains("incomplete"), "{words}");
        // A cut-short download is still called that.
        let t = tiny_gguf();
        let err = parse_bytes(&t[..t.len() - 10]).unwrap_err();
        assert!(matches!(err, ParseError::Truncated { .. }), "{err:?}");
    }

    #[test]
    fn text_renamed_gguf_is_not_gguf() {
        let err = parse_bytes(b"hello, I am a text file\n").unwrap_err();
        assert!(
            matches!(err, ParseError::NotGguf(ref s) if s == "hell"),
            "{err:?}"
        );
        assert!(matches!(parse_bytes(b"GG"), Err(ParseError::NotGguf(_))));
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let full = tiny_gguf();
        for cut in 0..full.len() {
            let err = parse_bytes(&full[..cut]).expect_err("a cut file must not parse");
            assert!(
                matches!(err, ParseError::Truncated { .. } | ParseError::NotGguf(_)),
                "cut at {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn lying_counts_do_not_allocate() {
        let mut b = tiny_gguf();
        b[16..24].copy_from_slice(&u64::MAX.to_le_bytes()); // kv count
        assert!(matches!(
            parse_bytes(&b),
            Err(ParseError::Truncated { .. } | ParseError::Malformed(_))
        ));
        // A key whose length is near u64::MAX: damaged, never "needs 18446744073709551615".
        let mut b = tiny_gguf();
        b[24..32].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        let err = parse_bytes(&b).unwrap_err().at(Path::new("junk.gguf"));
        let text = err.to_string();
        assert!(
            matches!(err, GgufError::Malformed { .. }) && !text.contains("18446744073"),
            "{text}"
        );
        let short = GgufError::Truncated {
            path: "m.gguf".into(),
            expected: 2_100_000_000,
            actual: 4104,
        };
        assert!(
            short
                .to_string()
                .contains("it has 4 KB but its contents need 2.1 GB"),
            "{short}"
        );
        let mut b = tiny_gguf();
        b[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes()); // tensor count
        assert!(parse_bytes(&b).is_err());
    }

    #[test]
    fn random_corruption_never_panics() {
        // A small deterministic xorshift so the test is repeatable without a crate.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let base = tiny_gguf();
        for _ in 0..20_000 {
            let mut b = base.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            let _ = parse_bytes(&b);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, .. Default::default() })]

        /// Any bytes at all: an answer or an error, never a panic or a huge allocation.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse_bytes(&bytes);
            let mut with_magic = b"GGUF\x03\0\0\0".to_vec();
            with_magic.extend(&bytes);
            let _ = parse_bytes(&with_magic);
        }

        /// Whatever a damaged file says of itself, the sentence Kindling shows reads as a
        /// person would write it: no size or count of ten digits or more (a dimension of
        /// 4712128852136459333 was shown as "a tensor's row of 4712128852136459333").
        #[test]
        fn damaged_files_are_described_in_plain_numbers(
            edits in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u64>()), 1..6)
        ) {
            let mut b = tiny_gguf();
            for (i, v) in edits {
                let at = (i % b.len()).min(b.len() - 8);
                b[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            if let Err(e) = parse_bytes(&b) {
                let words = e.at(Path::new("m.gguf")).to_string();
                let longest = words
                    .split(|c: char| !c.is_ascii_digit())
                    .map(str::len)
                    .max()
                    .unwrap_or(0);
                proptest::prop_assert!(longest < 10, "{}", words);
            }
        }

        /// A valid file with a few bytes overwritten anywhere.
        #[test]
        fn mutated_files_never_panic(edits in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..8)) {
            let mut b = tiny_gguf();
            for (i, v) in edits {
                let n = b.len();
                b[i % n] = v;
            }
            let _ = parse_bytes(&b);
        }
    }
}
