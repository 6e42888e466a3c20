"""PSP adapters: one module per provider behind one interface (`base.PspAdapter`)."""
