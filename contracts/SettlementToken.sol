// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IParticipantRegistry, Roles} from "./interfaces/IParticipantRegistry.sol";
import {ParticipantGated} from "./base/ParticipantGated.sol";

/// @title SettlementToken
/// @notice Tokenised cash in one currency. The operator mints against deposits received
/// off-chain and burns against withdrawals paid out off-chain; each deposit or withdrawal
/// reference can be used once, so a bank transfer is never credited twice. Tokens move only
/// between active participants, and not at all while the platform is paused.
/// @dev The settlement agent (the deployment's {Financing} contract, fixed at construction) moves
/// tokens without an allowance, and only in the cases where the payer consented on-chain to
/// that very payment: its own call (funding, repaying) or a standing offer it posted.
contract SettlementToken is ERC20, ParticipantGated {
    /// @notice ISO 4217 code of the currency one token unit stands for (in its minor units).
    bytes3 public immutable currency;
    /// @notice The contract that settles financings and repayments in this token.
    address public immutable settlementAgent;
    uint8 private immutable _decimals;

    /// @notice Whether a deposit or withdrawal reference has been used (each is used once).
    mapping(bytes32 ref => bool) public referenceUsed;

    event Minted(address indexed to, uint256 amount, bytes32 indexed depositRef);
    event Burned(address indexed from, uint256 amount, bytes32 indexed withdrawalRef);

    error ZeroAmount();
    error InvalidCurrency();
    error ReferenceAlreadyUsed(bytes32 ref);
    error NotSettlementAgent(address caller);
    error InvalidDecimals(uint8 decimals);

    /// @dev Receivable amounts are uint64 minor units: more than 6 decimals would cap an
    /// invoice at 18 trillion millionths, too little for real trade.
    uint8 public constant MAX_DECIMALS = 6;

    constructor(
        string memory name_,
        string memory symbol_,
        bytes3 currency_,
        uint8 decimals_,
        IParticipantRegistry participants_,
        address settlementAgent_,
        Administration memory administration
    ) ERC20(name_, symbol_) ParticipantGated(participants_, administration) {
        if (currency_ == bytes3(0)) revert InvalidCurrency();
        if (settlementAgent_ == address(0)) revert ZeroAddress();
        if (decimals_ > MAX_DECIMALS) revert InvalidDecimals(decimals_);
        currency = currency_;
        settlementAgent = settlementAgent_;
        _decimals = decimals_;
    }

    /// @notice Credits `amount` to `to` against the off-chain deposit `depositRef`.
    function mint(address to, uint256 amount, bytes32 depositRef) external onlyRole(OPERATOR_ROLE) {
        _useReference(depositRef, amount);
        _mint(to, amount);
        emit Minted(to, amount, depositRef);
    }

    /// @notice Burns `amount` from `from` against the off-chain withdrawal `withdrawalRef`.
    /// @dev The holder consents by approving the operator for at least `amount` first.
    function burn(address from, uint256 amount, bytes32 withdrawalRef) external onlyRole(OPERATOR_ROLE) {
        _useReference(withdrawalRef, amount);
        _spendAllowance(from, _msgSender(), amount);
        _burn(from, amount);
        emit Burned(from, amount, withdrawalRef);
    }

    /// @notice Moves `amount` from `from` to `to` as part of a settlement. The agent has
    /// checked that both are active participants, so only the balances are left to do.
    function settlementTransfer(address from, address to, uint256 amount) external {
        if (msg.sender != settlementAgent) revert NotSettlementAgent(msg.sender);
        if (from == address(0) || to == address(0)) revert ZeroAddress();
        super._update(from, to, amount);
    }

    /// @notice Moves tokens on `from`'s allowance; the spender must be an active participant too.
    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        _requireParticipant(_msgSender(), Roles.ANY);
        return super.transferFrom(from, to, value);
    }

    /// @notice Token units are the currency's minor units (2 for CNY, EUR, USD).
    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    /// @notice True while the platform (the participant registry) is paused.
    function paused() external view returns (bool) {
        return participants.paused();
    }

    function _useReference(bytes32 ref, uint256 amount) private {
        if (amount == 0) revert ZeroAmount();
        if (referenceUsed[ref]) revert ReferenceAlreadyUsed(ref);
        referenceUsed[ref] = true;
    }

    /// @dev Every movement, mint and burn included, needs active participants on both ends and
    /// an unpaused platform (the participant registry refuses to answer while paused).
    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0)) {
            _requireParticipant(to, Roles.ANY);
        } else if (to == address(0)) {
            _requireParticipant(from, Roles.ANY);
        } else {
            _requireParticipants(from, Roles.ANY, to, Roles.ANY);
        }
        super._update(from, to, value);
    }
}
