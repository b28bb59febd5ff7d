// The Hub module.
