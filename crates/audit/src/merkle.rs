//! RFC 6962 / RFC 9162 Merkle trees over a chain's events.
//!
//! Each event's hash *is* its RFC 6962 leaf hash (`SHA-256(0x00 || encoding)`, see
//! [`crate::event`]), so a chain of `n` events defines the Merkle tree `MTH(D[n])`
//! whose root a signed checkpoint commits to. A writer keeps only the
//! [`Frontier`] (one node per set bit of `n`), so a root costs `O(log n)`;
//! [`inclusion_proof`] needs the leaf hashes up to the tree size, and
//! [`verify_inclusion`] needs nothing but the proof: an auditor can check one event
//! against a signed root without the rest of the log.

use crate::Hash;

/// `SHA-256(0x01 || left || right)`: an interior node (RFC 6962 §2.1).
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::of(&[&[1], left.as_bytes(), right.as_bytes()])
}

/// `SHA-256(0x00 || data)`: a leaf (RFC 6962 §2.1).
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Hash {
    Hash::of(&[&[0], data])
}

/// The root of the empty tree: `SHA-256()` (RFC 6962 §2.1).
#[must_use]
pub fn empty_root() -> Hash {
    Hash::of(&[])
}

/// The roots of the perfect subtrees that make up a tree of `size` leaves, largest
/// first: everything needed to append a leaf or compute the root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            size: 0,
            nodes: Vec::new(),
        }
    }

    /// Rebuilds a frontier from its [`Frontier::to_bytes`] form; `None` when the node
    /// count does not match the size's set bits.
    #[must_use]
    pub fn from_parts(size: u64, bytes: &[u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(32) || bytes.len() / 32 != size.count_ones() as usize {
            return None;
        }
        let nodes = bytes
            .chunks_exact(32)
            .filter_map(Hash::from_slice)
            .collect();
        Some(Self { size, nodes })
    }

    /// The nodes, concatenated, largest subtree first.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.nodes.iter().flat_map(|n| n.0).collect()
    }

    /// The number of leaves.
    #[must_use]
    pub const fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        // Each trailing one bit of the old size is a perfect subtree of the same
        // height as `node`: merge them, as binary addition carries.
        let mut carries = self.size.trailing_ones();
        while carries > 0 {
            let left = self.nodes.pop().unwrap_or_default();
            node = node_hash(&left, &node);
            carries -= 1;
        }
        self.nodes.push(node);
        self.size += 1;
    }

    /// The tree's root, `MTH(D[size])`.
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(first) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*first, |acc, left| node_hash(left, &acc))
    }
}

/// The root of the tree over `leaves` (leaf hashes), by recursion as RFC 6962
/// defines it. Used by tests and by proofs; writers use [`Frontier`].
#[must_use]
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two smaller than `n` (`n > 1`).
const fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The audit path of leaf `index` in the tree over `leaves`: RFC 6962 §2.1.1
/// `PATH(m, D[n])`, bottom up. `None` when `index` is out of range.
#[must_use]
pub fn inclusion_proof(index: u64, leaves: &[Hash]) -> Option<Vec<Hash>> {
    let index = usize::try_from(index).ok()?;
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    path_into(index, leaves, &mut path);
    Some(path)
}

fn path_into(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path_into(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path_into(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// Checks that `leaf` is leaf number `index` of the tree of `size` leaves whose root
/// is `root`, given its audit path: RFC 9162 §2.1.3.2.
#[must_use]
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn the_empty_tree_hashes_the_empty_string() {
        assert_eq!(
            empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Frontier::new().root(), empty_root());
    }

    #[test]
    fn the_frontier_agrees_with_the_recursive_definition_at_every_size() {
        let all = leaves(70);
        let mut frontier = Frontier::new();
        for n in 1..=all.len() {
            frontier.push(all[n - 1]);
            assert_eq!(frontier.root(), root(&all[..n]), "size {n}");
            let restored = Frontier::from_parts(frontier.size(), &frontier.to_bytes());
            assert_eq!(restored.as_ref(), Some(&frontier));
        }
        assert_eq!(Frontier::from_parts(3, &[0; 32]), None);
    }

    #[test]
    fn every_inclusion_proof_verifies_and_no_wrong_one_does() {
        for n in 1..=33 {
            let all = leaves(n);
            let r = root(&all);
            for m in 0..n {
                let path = inclusion_proof(m as u64, &all).expect("in range");
                assert!(
                    verify_inclusion(&all[m], m as u64, n as u64, &path, &r),
                    "{m} of {n}"
                );
                let other = leaf_hash(b"not in the tree");
                assert!(!verify_inclusion(&other, m as u64, n as u64, &path, &r));
                if n > 1 {
                    assert!(!verify_inclusion(
                        &all[m],
                        ((m + 1) % n) as u64,
                        n as u64,
                        &path,
                        &r
                    ));
                }
                if let Some((first, rest)) = path.split_first() {
                    let mut bent = vec![node_hash(first, first)];
                    bent.extend_from_slice(rest);
                    assert!(!verify_inclusion(&all[m], m as u64, n as u64, &bent, &r));
                    assert!(!verify_inclusion(
                        &all[m],
                        m as u64,
                        n as u64,
                        &path[1..],
                        &r
                    ));
                }
            }
            assert_eq!(inclusion_proof(n as u64, &all), None);
        }
    }

    #[test]
    fn a_proof_is_logarithmic() {
        let all = leaves(1000);
        let path = inclusion_proof(517, &all).expect("in range");
        assert!(path.len() <= 10, "{}", path.len());
    }
}
