"""The pure condition language: units, lexer, parser, column-wise evaluation."""
