"""Pure bytes ⇄ values: SCGI framing and the XML-RPC codec. No I/O."""
