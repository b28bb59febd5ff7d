// The Spool module.
