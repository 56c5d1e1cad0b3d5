import GRDB

extension Row {
    /// The first row of `statement`, read by `body` where it lies instead of copied out first.
    ///
    /// `Row.fetchOne` copies every column of the row (each text column a new string), and a copied
    /// row finds a column by name by lower-casing the name and then every column's name until one
    /// matches. A row read in place finds it in GRDB's index of the statement's columns (exact
    /// match first). For a job or stack row read by name column after column, that was most of what
    /// reading it cost on the webhook and result paths. `body` must not keep `row` (copy what it needs).
    static func readFirst<T>(_ statement: Statement, arguments: StatementArguments, _ body: (Row) throws -> T) throws -> T? {
        let cursor = try Row.fetchCursor(statement, arguments: arguments)
        return try withExtendedLifetime(cursor) {
            try cursor.next().map(body)
        }
    }
}
