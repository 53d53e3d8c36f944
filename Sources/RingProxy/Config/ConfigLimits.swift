// ConfigLimits: how much one configuration line may hold, so that a huge or hostile file is
// refused in time linear in its size, with a message that quotes a short prefix instead of
// the whole thing. HAProxy reads at most 64 words a line; the byte limits are far above any
// real configuration (a certificate path, a regex).

enum ConfigLimits {
    static let lineBytesMax = 65_536
    static let wordsMax = 64
    static let wordBytesMax = 8_192
    static let fileBytesMax = 16 << 20

    /// The first characters of `text`, quoted, with an ellipsis when there is more.
    static func quotedPrefix(_ text: String, length: Int = 40) -> String {
        let head = String(text.unicodeScalars.prefix(length))
        return "'\(head)\(text.unicodeScalars.count > length ? "…" : "")'"
    }
}
