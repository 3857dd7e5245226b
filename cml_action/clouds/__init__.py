"""Cloud providers behind one provisioning interface (see base.Provider); SDKs are imported lazily."""
