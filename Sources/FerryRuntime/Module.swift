import FerryIR
